package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

const transcodeAbout = `Convert an RRDP notification, snapshot or delta between RFC 8182 XML and the
iRPKI protobuf layout (.bin). The kind and format of IN are detected from its
content; by default XML becomes .bin and .bin becomes XML. IN or OUT may be -
for stdin or stdout. Everything is checked on the way; a rejected input exits
non-zero with the error on stderr and leaves a file OUT untouched (on stdout,
.bin to XML streams group by group, so a late error can follow partial XML).

A notification names its snapshot and deltas, so IN must then be a file: the
files it names are looked up beside it (by the trailing part of their URI
path), checked against the notification's hashes, converted, and written
beside OUT under <session>/<serial>/<hash>/<kind>.<format>; OUT is the new
notification, referencing them. Deltas not found are left out of it.`

func transcodeCommand(stdout, stderr io.Writer) *cli.Command {
	fs := flag.NewFlagSet("transcode", flag.ContinueOnError)
	to := fs.String("to", "", "output format, `bin or xml` (default: the other one)")
	return &cli.Command{
		Name: "transcode", Args: "[--to bin|xml] IN OUT", Summary: "convert an RRDP file between XML and .bin",
		About: transcodeAbout, Flags: fs, MinArgs: 2, MaxArgs: 2,
		Run: func(args []string) error { return transcode(*to, args[0], args[1], stdout, stderr) },
	}
}

// transcode converts the file inPath into outPath, in the format to (empty:
// the other one).
func transcode(to, inPath, outPath string, stdout, stderr io.Writer) error {
	var target irpki.Format
	switch to {
	case "":
	case "bin":
		target = irpki.FormatBin
	case "xml":
		target = irpki.FormatXML
	default:
		return cli.Usagef("--to %q: want bin or xml", to)
	}

	in, err := openInput(inPath)
	if err != nil {
		return err
	}
	defer in.Close()
	br := bufio.NewReaderSize(in, irpki.DetectSize)
	prefix, err := br.Peek(irpki.DetectSize)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return fmt.Errorf("cannot read %s: %w", inPath, err)
	}
	from, kind, err := irpki.Detect(prefix)
	if err != nil {
		return fmt.Errorf("%s: %w", inPath, err)
	}
	if target == 0 {
		target = irpki.FormatBin
		if from == irpki.FormatBin {
			target = irpki.FormatXML
		}
	}
	if kind == rrdpxml.KindNotification {
		if inPath == "-" || outPath == "-" {
			return fmt.Errorf("a notification names its snapshot and deltas: give files, not - (stdin/stdout), so that they can be found and written beside it")
		}
		return transcodeNotification(br, inPath, outPath, from, target, stderr)
	}
	return writeOutput(outPath, stdout, func(w io.Writer) error {
		_, err := irpki.Transcode(w, br, from, target, irpki.Options{})
		if err != nil {
			return fmt.Errorf("%s: %w", inPath, err)
		}
		return nil
	})
}

func openInput(path string) (io.ReadCloser, error) {
	if path == "-" {
		return io.NopCloser(os.Stdin), nil
	}
	return os.Open(path)
}

// writeOutput runs write against OUT: stdout for "-", otherwise a
// temporary file beside OUT that is renamed over it only on success.
func writeOutput(path string, stdout io.Writer, write func(io.Writer) error) error {
	if path == "-" {
		bw := bufio.NewWriterSize(stdout, 256<<10)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename this finds nothing
	// RRDP files are public: readable by all, like any published file
	// (CreateTemp makes them 0600).
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// transcodeNotification converts a notification together with the files
// it names, found beside it.
func transcodeNotification(r io.Reader, inPath, outPath string, from, to irpki.Format, stderr io.Writer) error {
	n, err := readNotification(r, from)
	if err != nil {
		return fmt.Errorf("%s: %w", inPath, err)
	}
	dir, outDir := filepath.Dir(inPath), filepath.Dir(outPath)
	snapPath, base, err := locate(dir, n.Snapshot.URI)
	if err != nil {
		return fmt.Errorf("%s: snapshot: %w", inPath, err)
	}
	// Files converted before a later failure are removed again: a rejected
	// input leaves nothing behind.
	var written []string
	ok := false
	defer func() {
		if !ok {
			for _, p := range written {
				os.Remove(p)
			}
		}
	}()
	convert := func(path string, kind rrdpxml.Kind, serial uint64, hash [32]byte) ([32]byte, error) {
		sum, dst, err := convertFile(path, outDir, n, kind, serial, hash, from, to)
		if dst != "" {
			written = append(written, dst)
		}
		return sum, err
	}
	sums := irpki.Sums{Deltas: make(map[uint64][32]byte)}
	if sums.Snapshot, err = convert(snapPath, rrdpxml.KindSnapshot, n.Serial, n.Snapshot.Hash); err != nil {
		return err
	}
	for _, d := range n.Deltas {
		p, _, err := locate(dir, d.URI)
		if err != nil {
			fmt.Fprintf(stderr, "rrdp-proxy transcode: delta %d left out: %v\n", d.Serial, err)
			continue
		}
		if sums.Deltas[d.Serial], err = convert(p, rrdpxml.KindDelta, d.Serial, d.Hash); err != nil {
			return err
		}
	}
	out := irpki.MapNotification(n, base, to, sums)
	err = writeOutput(outPath, nil, func(w io.Writer) error {
		if to == irpki.FormatXML {
			return rrdpxml.EncodeNotification(w, out)
		}
		b, err := irpki.MarshalNotification(out)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
	ok = err == nil
	return err
}

func readNotification(r io.Reader, f irpki.Format) (*rrdpxml.Notification, error) {
	if f == irpki.FormatXML {
		n, _, err := rrdpxml.DecodeNotification(r, rrdpxml.Limits{})
		return n, err
	}
	b, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return nil, err
	}
	return irpki.UnmarshalNotification(b, rrdpxml.Limits{})
}

// locate finds the local file for a URI named by a notification in dir: the
// longest trailing part of the URI's path that exists under dir. It returns
// the file and the URI of the directory that dir stands for. Every segment
// is decoded on its own and must stay a plain local name, so no URI can
// reach outside dir (rrdpxml already refuses dot segments and encoded
// separators; this does not rely on it).
func locate(dir, uri string) (path, base string, err error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", "", err
	}
	escaped := strings.Split(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	segs := make([]string, len(escaped))
	for i, e := range escaped {
		seg, err := url.PathUnescape(e)
		if err != nil || seg == "" || !filepath.IsLocal(seg) || strings.ContainsAny(seg, `/\`) {
			return "", "", fmt.Errorf("uri %s: path segment %q is not a plain file name", uri, e)
		}
		segs[i] = seg
	}
	for i := range segs {
		p := filepath.Join(append([]string{dir}, segs[i:]...)...)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			rest := strings.Join(escaped[i:], "/")
			if !strings.HasSuffix(uri, rest) {
				return "", "", fmt.Errorf("uri %s: cannot tell its directory from its path", uri)
			}
			return p, strings.TrimSuffix(uri, rest), nil
		}
	}
	return "", "", fmt.Errorf("no file for %s under %s", uri, dir)
}

// convertFile converts one snapshot or delta, checks it against the
// notification (hash, session, serial) and writes it under outDir at its
// FilePath. It returns the SHA-256 of what it wrote and where.
func convertFile(path, outDir string, n *rrdpxml.Notification, kind rrdpxml.Kind, serial uint64, hash [32]byte, from, to irpki.Format) ([32]byte, string, error) {
	var sum [32]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, "", err
	}
	defer f.Close()
	var buf bytes.Buffer
	res, err := irpki.Transcode(&buf, f, from, to, irpki.Options{})
	if err != nil {
		return sum, "", fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case res.InSum != hash:
		return sum, "", fmt.Errorf("%s: sha-256 %x, the notification says %x", path, res.InSum, hash)
	case res.Kind != kind:
		return sum, "", fmt.Errorf("%s: a %s where the notification names a %s", path, res.Kind, kind)
	case res.Session != n.SessionID || res.Serial != serial:
		return sum, "", fmt.Errorf("%s: session %s serial %d, the notification says session %s serial %d", path, res.Session, res.Serial, n.SessionID, serial)
	}
	dst := filepath.Join(outDir, filepath.FromSlash(irpki.FilePath(kind, to, n.SessionID, serial, res.OutSum)))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return sum, "", err
	}
	err = writeOutput(dst, nil, func(w io.Writer) error { _, err := buf.WriteTo(w); return err })
	return res.OutSum, dst, err
}
