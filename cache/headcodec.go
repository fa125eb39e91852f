package cache

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// headVersion is the version of the stored form of a Head. Version 1 was
// the untagged JSON of follow.Head (field names as in Go, sums as arrays
// of numbers), written before the schema moved here; it still loads.
// Version 2 has a "v" field, lower-case tags, sums in hex, kinds and
// formats by name, and the Index of composite files. A reader meets a
// version it does not know with an error, never with a guess.
const headVersion = 2

type headV2 struct {
	V               int      `json:"v"`
	Repo            string   `json:"repo"`
	Session         string   `json:"session"`
	Serial          uint64   `json:"serial"`
	Resets          uint64   `json:"resets,omitempty"`
	Origin          string   `json:"origin,omitempty"`
	Transparent     bool     `json:"transparent,omitempty"`
	Time            string   `json:"time"`
	NotificationXML []byte   `json:"notification_xml"`
	NotificationBin []byte   `json:"notification_bin"`
	Files           []fileV2 `json:"files"`
}

type fileV2 struct {
	Path     string `json:"path"`
	Sum      string `json:"sum"`
	Size     int64  `json:"size"`
	Format   string `json:"format,omitempty"`
	Kind     string `json:"kind,omitempty"`
	Serial   uint64 `json:"serial"`
	Expires  string `json:"expires,omitempty"`
	Upstream string `json:"upstream,omitempty"`
	Gzip     bool   `json:"gzip,omitempty"`
	Index    string `json:"index,omitempty"`
}

// headV1 is the version 1 form (the default encoding of the old struct).
type headV1 struct {
	Repo            string
	Session         string
	Serial          uint64
	Resets          uint64
	Origin          irpki.Format
	Transparent     bool
	Time            time.Time
	NotificationXML []byte
	NotificationBin []byte
	Files           []struct {
		Path     string
		Sum      [32]byte
		Size     int64
		Format   irpki.Format
		Kind     rrdpxml.Kind
		Serial   uint64
		Expires  time.Time
		Upstream [32]byte
		Gzip     bool
	}
}

var (
	formatNames = map[irpki.Format]string{irpki.FormatXML: "xml", irpki.FormatBin: "bin"}
	kindNames   = map[rrdpxml.Kind]string{rrdpxml.KindNotification: "notification", rrdpxml.KindSnapshot: "snapshot", rrdpxml.KindDelta: "delta"}
)

func sumHex(s [32]byte) string {
	if s == ([32]byte{}) {
		return ""
	}
	return hex.EncodeToString(s[:])
}

func parseSum(field, s string) ([32]byte, error) {
	var sum [32]byte
	if s == "" {
		return sum, nil
	}
	if len(s) != 64 {
		return sum, fmt.Errorf("%s %q: want 64 hex digits", field, s)
	}
	if _, err := hex.Decode(sum[:], []byte(s)); err != nil {
		return sum, fmt.Errorf("%s %q: %w", field, s, err)
	}
	return sum, nil
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, fmt.Errorf("%s: %w", field, err)
	}
	return t, nil
}

func nameOf[K comparable](names map[K]string, k K, what string) (string, error) {
	var zero K
	if n, ok := names[k]; ok {
		return n, nil
	} else if k == zero {
		return "", nil // unset, as in heads made by hand in tests
	}
	return "", fmt.Errorf("unknown %s %v", what, k)
}

func byName[K comparable](names map[K]string, n, what string) (K, error) {
	var zero K
	if n == "" {
		return zero, nil
	}
	for k, s := range names {
		if s == n {
			return k, nil
		}
	}
	return zero, fmt.Errorf("unknown %s %q", what, n)
}

// UnmarshalJSON decodes a stored head of version 1 or 2.
func (h *Head) UnmarshalJSON(b []byte) error {
	var probe struct {
		V *int `json:"v"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return fmt.Errorf("cache: decode head: %w", err)
	}
	if probe.V == nil {
		return h.fromV1(b)
	}
	if *probe.V != headVersion {
		return fmt.Errorf("cache: decode head: version %d, this build reads 1 and %d", *probe.V, headVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var v headV2
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("cache: decode head: %w", err)
	}
	origin, err := byName(formatNames, v.Origin, "origin format")
	if err != nil {
		return fmt.Errorf("cache: decode head of %s: %w", v.Repo, err)
	}
	t, err := parseTime("time", v.Time)
	if err != nil {
		return fmt.Errorf("cache: decode head of %s: %w", v.Repo, err)
	}
	*h = Head{Repo: v.Repo, Session: v.Session, Serial: v.Serial, Resets: v.Resets, Origin: origin, Transparent: v.Transparent,
		Time: t, NotificationXML: v.NotificationXML, NotificationBin: v.NotificationBin, Files: make([]File, len(v.Files))}
	for i, fv := range v.Files {
		bad := func(err error) error {
			return fmt.Errorf("cache: decode head of %s: file %d (%s): %w", v.Repo, i, fv.Path, err)
		}
		f := File{Path: fv.Path, Size: fv.Size, Serial: fv.Serial, Gzip: fv.Gzip}
		if f.Format, err = byName(formatNames, fv.Format, "format"); err != nil {
			return bad(err)
		}
		if f.Kind, err = byName(kindNames, fv.Kind, "kind"); err != nil {
			return bad(err)
		}
		if f.Sum, err = parseSum("sum", fv.Sum); err != nil {
			return bad(err)
		}
		if f.Upstream, err = parseSum("upstream", fv.Upstream); err != nil {
			return bad(err)
		}
		if f.Index, err = parseSum("index", fv.Index); err != nil {
			return bad(err)
		}
		if f.Expires, err = parseTime("expires", fv.Expires); err != nil {
			return bad(err)
		}
		h.Files[i] = f
	}
	return nil
}

func (h *Head) fromV1(b []byte) error {
	var v headV1
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("cache: decode head (version 1): %w", err)
	}
	*h = Head{Repo: v.Repo, Session: v.Session, Serial: v.Serial, Resets: v.Resets, Origin: v.Origin, Transparent: v.Transparent,
		Time: v.Time, NotificationXML: v.NotificationXML, NotificationBin: v.NotificationBin, Files: make([]File, len(v.Files))}
	for i, f := range v.Files {
		h.Files[i] = File{Path: f.Path, Sum: f.Sum, Size: f.Size, Format: f.Format, Kind: f.Kind, Serial: f.Serial,
			Expires: f.Expires, Upstream: f.Upstream, Gzip: f.Gzip}
	}
	return nil
}
