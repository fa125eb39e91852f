package main

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
)

const inspectAbout = `Describe an RRDP notification, snapshot or delta, XML or .bin: its kind,
format, session, serial, groups (publication points), objects by type (file
extension) and size; for a notification its snapshot and deltas. The whole
file is read and checked. FILE may be - for stdin.`

// inspectOutput is the --json form. Other tooling reads these keys.
type inspectOutput struct {
	Kind      string         `json:"kind"`
	Format    string         `json:"format"`
	SessionID string         `json:"session_id"`
	Serial    uint64         `json:"serial"`
	Groups    int            `json:"groups"`
	Objects   int            `json:"objects"`
	Types     map[string]int `json:"types"`
	Bytes     int64          `json:"bytes"`
	SHA256    string         `json:"sha256"`
	Snapshot  *refOutput     `json:"snapshot,omitempty"`
	Deltas    []refOutput    `json:"deltas,omitempty"`
}

type refOutput struct {
	Serial uint64 `json:"serial,omitempty"`
	URI    string `json:"uri"`
	Hash   string `json:"hash"`
}

func inspectCommand(stdout io.Writer) *cli.Command {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print one JSON object")
	return &cli.Command{
		Name: "inspect", Args: "[--json] FILE", Summary: "describe an RRDP file of either format",
		About: inspectAbout, Flags: fs, MinArgs: 1, MaxArgs: 1,
		Run: func(args []string) error { return inspect(args[0], *asJSON, stdout) },
	}
}

// inspect describes the file at path on stdout.
func inspect(path string, asJSON bool, stdout io.Writer) error {
	in, err := openInput(path)
	if err != nil {
		return err
	}
	defer in.Close()
	ins, err := irpki.Inspect(in, irpki.Options{})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	out := inspectOutput{
		Kind:      ins.Kind.String(),
		Format:    ins.Format.String(),
		SessionID: ins.Session,
		Serial:    ins.Serial,
		Groups:    ins.Groups,
		Objects:   ins.Objects,
		Types:     ins.Types,
		Bytes:     ins.InSize,
		SHA256:    hex.EncodeToString(ins.InSum[:]),
	}
	if n := ins.Notification; n != nil {
		out.Snapshot = &refOutput{URI: n.Snapshot.URI, Hash: hex.EncodeToString(n.Snapshot.Hash[:])}
		for _, d := range n.Deltas {
			out.Deltas = append(out.Deltas, refOutput{Serial: d.Serial, URI: d.URI, Hash: hex.EncodeToString(d.Hash[:])})
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	_, err = io.WriteString(stdout, out.text())
	return err
}

func (o *inspectOutput) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kind:     %s\nformat:   %s\nsession:  %s\nserial:   %d\nbytes:    %d\nsha256:   %s\n",
		o.Kind, o.Format, o.SessionID, o.Serial, o.Bytes, o.SHA256)
	if o.Snapshot != nil {
		fmt.Fprintf(&b, "snapshot: %s %s\ndeltas:   %d\n", o.Snapshot.URI, o.Snapshot.Hash, len(o.Deltas))
		for _, d := range o.Deltas {
			fmt.Fprintf(&b, "  %d %s %s\n", d.Serial, d.URI, d.Hash)
		}
		return b.String()
	}
	fmt.Fprintf(&b, "groups:   %d\nobjects:  %d\n", o.Groups, o.Objects)
	types := make([]string, 0, len(o.Types))
	for t := range o.Types {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		name := t
		if name == "" {
			name = "(none)"
		}
		fmt.Fprintf(&b, "  %-8s %d\n", name, o.Types[t])
	}
	return b.String()
}
