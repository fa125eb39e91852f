package repotest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// stateVersion is the version of the state file's format.
const stateVersion = 1

// Paths relative to the repository directory.
const (
	stateFile        = ".repotest/state.json"
	talFile          = "ta.tal"
	taCertFile       = "ta.cer"
	vrpFile          = "expected-vrps.csv"
	notificationFile = "rrdp/notification.xml"
	// splitDir is the directory of the second repository (Config.Split).
	splitDir = "delegated"
)

// Validity of what the generator issues. Certificates start a day before
// "now", so that a relying party whose clock is a little behind accepts
// them; manifests and CRLs are reissued once a day has passed.
const (
	backdate         = 24 * time.Hour
	caValidity       = 365 * 24 * time.Hour
	eeValidity       = 365 * 24 * time.Hour
	taValidity       = 5 * 365 * 24 * time.Hour
	certRenewBefore  = 30 * 24 * time.Hour
	manifestBackdate = time.Hour
	manifestValidity = 3 * 24 * time.Hour
	manifestRenew    = 2 * 24 * time.Hour // reissue when less is left
)

// keepDeltas is how many deltas the notification lists; keepSnapshots how
// many snapshot files stay on disk (the current one and the previous).
const (
	keepDeltas    = 50
	keepSnapshots = 2
)

// state is everything the generator needs to rebuild and evolve the
// repository; every published object is a function of it.
type state struct {
	Version int     `json:"version"`
	Seed    int64   `json:"seed"`
	Profile Profile `json:"profile"`

	// server is the first repository, the TA's (its fields are those
	// of the state file before a tree could be split).
	server
	// Split is the second repository, where the delegated CAs publish
	// (Config.Split), or nil.
	Split *server `json:"split,omitempty"`

	Steps uint64 `json:"steps"` // churn steps so far, the stream of randomness
	Now   int64  `json:"now"`   // the last "now", Unix seconds

	NextCA int    `json:"next_ca"`
	NextV4 uint32 `json:"next_v4"` // next free IPv4 /24, as address >> 8
	NextV6 uint32 `json:"next_v6"` // next free IPv6 /32, as the top 32 bits

	CAs []*caState `json:"cas"` // by ID; CAs[0] is the TA
}

// server is one RRDP repository of the tree, as its publication server
// keeps it: where it is served, the rsync base of its publication
// points, its session, serial and files.
type server struct {
	// Dir is the directory of its files, relative to the repository
	// directory: "" for the first, splitDir for the second.
	Dir       string `json:"dir,omitempty"`
	BaseURL   string `json:"base_url"`
	RsyncBase string `json:"rsync_base"`

	SessionID string `json:"session_id"`
	Resets    int    `json:"resets"`
	Serial    uint64 `json:"serial"`

	Objects   int       `json:"objects"` // published objects
	Snapshots []fileRef `json:"snapshots"`
	Deltas    []fileRef `json:"deltas"` // oldest first
}

// servers returns the repositories of the tree, the first one first.
func (s *state) servers() []*server {
	if s.Split == nil {
		return []*server{&s.server}
	}
	return []*server{&s.server, s.Split}
}

// serverOf returns the repository in which ca publishes.
func (s *state) serverOf(ca *caState) *server {
	if ca.Delegated {
		return s.Split
	}
	return &s.server
}

// serverOfURI returns the repository of the object at an rsync URI.
func (s *state) serverOfURI(uri string) *server {
	if s.Split != nil && strings.HasPrefix(uri, s.Split.RsyncBase) {
		return s.Split
	}
	return &s.server
}

// fileRef is an RRDP file: its path relative to the directory, its
// SHA-256 and size.
type fileRef struct {
	Serial uint64   `json:"serial"`
	Path   string   `json:"path"`
	Hash   hexBytes `json:"hash"`
	Size   int64    `json:"size"`
}

// eeState is the serial and validity of a certificate.
type eeState struct {
	Serial    uint64 `json:"s"`
	NotBefore int64  `json:"b"`
	NotAfter  int64  `json:"a"`
}

// roaState is one ROA: its slot in the CA's address space, which names
// the file and its prefixes, the version of its content, and its EE
// certificate.
type roaState struct {
	Slot uint32 `json:"i"`
	Ver  uint32 `json:"v"`
	eeState
}

// revokedState is one revoked certificate and when it expires, after which
// it leaves the CRL.
type revokedState struct {
	Serial  uint64 `json:"s"`
	Time    int64  `json:"t"`
	Expires int64  `json:"x"`
}

// caState is one CA: the TA, an intermediate or a member.
type caState struct {
	ID     int  `json:"id"`
	Parent int  `json:"parent"` // -1 for the TA
	All    bool `json:"all"`    // holds all resources (TA, intermediates)
	// Delegated says the CA publishes in the second repository
	// (state.Split), like a member running its own publication point.
	Delegated bool `json:"delegated,omitempty"`
	// Cert is the CA certificate, serial in the parent's number space.
	Cert eeState `json:"cert"`
	// Address space of a member: V4Size /24s from V4Base (address >> 8),
	// and the /32 V6Base (top 32 bits); slot i of a ROA is the i-th /24
	// (when i < V4Size) and the i-th /48.
	V4Base uint32 `json:"v4,omitempty"`
	V4Size uint32 `json:"v4n,omitempty"`
	V6Base uint32 `json:"v6,omitempty"`

	Children []int      `json:"children,omitempty"`
	ROAs     []roaState `json:"roas,omitempty"`
	ASPA     *roaState  `json:"aspa,omitempty"`
	NextSlot uint32     `json:"next_slot,omitempty"`

	NextSerial uint64         `json:"next_serial"` // of certificates it issues
	Number     uint64         `json:"number"`      // manifest and CRL number
	ThisUpdate int64          `json:"this_update"`
	NextUpdate int64          `json:"next_update"`
	MftEE      uint64         `json:"mft_ee"` // serial of the manifest's EE certificate
	Revoked    []revokedState `json:"revoked,omitempty"`
}

// hexBytes is a byte slice written as lowercase hex in JSON.
type hexBytes []byte

func (h hexBytes) MarshalText() ([]byte, error) {
	return []byte(hex.EncodeToString(h)), nil
}

func (h *hexBytes) UnmarshalText(text []byte) error {
	b, err := hex.DecodeString(string(text))
	if err != nil {
		return fmt.Errorf("bad hex %q: %w", text, err)
	}
	*h = b
	return nil
}

// loadState reads the state of the repository in dir.
func loadState(dir string) (*state, error) {
	p := filepath.Join(dir, stateFile)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read repository state: %w", err)
	}
	var s state
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode repository state %s: %w", p, err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("repository state %s: version %d, want %d", p, s.Version, stateVersion)
	}
	for i, ca := range s.CAs {
		if ca != nil && ca.ID != i {
			return nil, fmt.Errorf("repository state %s: CA %d at index %d", p, ca.ID, i)
		}
	}
	if len(s.CAs) == 0 || s.CAs[0] == nil {
		return nil, fmt.Errorf("repository state %s: no trust anchor", p)
	}
	if s.Split != nil && (s.Split.Dir != splitDir || s.Split.RsyncBase == s.RsyncBase) {
		return nil, fmt.Errorf("repository state %s: second repository in %q with rsync base %s", p, s.Split.Dir, s.Split.RsyncBase)
	}
	for _, sv := range s.servers() {
		if len(sv.Snapshots) == 0 {
			return nil, fmt.Errorf("repository state %s: no snapshot of %s", p, sv.BaseURL)
		}
		for _, f := range append(sv.Snapshots, sv.Deltas...) {
			if len(f.Hash) != sha256.Size {
				return nil, fmt.Errorf("repository state %s: %s: hash of %d bytes", p, f.Path, len(f.Hash))
			}
		}
	}
	for _, ca := range s.CAs {
		if ca != nil && ca.Delegated && s.Split == nil {
			return nil, fmt.Errorf("repository state %s: CA %d is delegated, but there is no second repository", p, ca.ID)
		}
	}
	return &s, nil
}

// save writes the state atomically.
func (s *state) save(dir string) error {
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode repository state: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, stateFile), append(data, '\n'))
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, creating the directory.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// publishFile replaces a file that an HTTP server serves, like the
// notification: it leaves an unchanged file alone, and makes sure that a
// changed one gets a later modification time at the resolution of
// Last-Modified (a second), so that a client's If-Modified-Since never hides
// a change made within the second of its previous fetch.
func publishFile(path string, data []byte) error {
	old, err := os.Stat(path)
	if err == nil {
		if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, data) {
			return nil
		}
	}
	if err := writeFileAtomic(path, data); err != nil {
		return err
	}
	if old == nil {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	prev := old.ModTime().Truncate(time.Second)
	if st.ModTime().Truncate(time.Second).After(prev) {
		return nil
	}
	t := prev.Add(time.Second)
	return os.Chtimes(path, t, t)
}

func unix(t time.Time) int64 { return t.Unix() }

func fromUnix(s int64) time.Time { return time.Unix(s, 0).UTC() }
