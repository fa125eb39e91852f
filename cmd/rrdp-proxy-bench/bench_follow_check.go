package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// maxChecked caps one file the origin check reads from a child (the
// largest snapshot in sight is about 1.1 GB of XML).
const maxChecked = 4 << 30

// checkOrigin checks that a child in reverse mode serves the origin's
// bytes: its notification.xml is notif, the origin's, byte for byte; the
// snapshot it names, as identity and as gzip decoded, and its newest
// delta are the files the origin serves from dir under base (same length,
// same SHA-256, which is the notification's). A benchmark of a serve that
// answers other bytes would measure nothing: the caller reports this as
// the serial's error.
func (c *followChild) checkOrigin(ctx context.Context, notif []byte, dir, base string) error {
	code, got, err := c.get(ctx, c.notif)
	if err != nil {
		return fmt.Errorf("check notification.xml: %w", err)
	}
	if code != http.StatusOK {
		return fmt.Errorf("check notification.xml: status %d", code)
	}
	if !bytes.Equal(got, notif) {
		return fmt.Errorf("check notification.xml: %d bytes served differ from the origin's %d bytes at byte %d", len(got), len(notif), firstDiff(got, notif))
	}
	n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(notif), rrdpxml.Limits{})
	if err != nil {
		return fmt.Errorf("check notification.xml: %w", err)
	}
	files := []rrdpxml.SnapshotRef{n.Snapshot}
	if len(n.Deltas) > 0 {
		files = append(files, rrdpxml.SnapshotRef{URI: n.Deltas[0].URI, Hash: n.Deltas[0].Hash})
	}
	// One client without a whole-request timeout: a snapshot of a GB
	// takes a while to read and decompress; the context bounds it.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, ResponseHeaderTimeout: time.Minute}}
	defer client.CloseIdleConnections()
	for i, ref := range files {
		rel, ok := strings.CutPrefix(ref.URI, base)
		if !ok {
			return fmt.Errorf("check %s: not under %s", ref.URI, base)
		}
		fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return fmt.Errorf("check %s: the origin's file: %w", ref.URI, err)
		}
		encs := []string{"identity"}
		if i == 0 {
			encs = append(encs, "gzip")
		}
		for _, enc := range encs {
			size, sum, err := c.digest(ctx, client, "http://"+c.addr+"/"+rel, enc)
			if err != nil {
				return fmt.Errorf("check %s (%s): %w", ref.URI, enc, err)
			}
			if size != fi.Size() || sum != ref.Hash {
				return fmt.Errorf("check %s (%s): served %d bytes of SHA-256 %x, the origin's file is %d bytes of %x", ref.URI, enc, size, sum, fi.Size(), ref.Hash)
			}
		}
	}
	return nil
}

// digest streams u from the child with Accept-Encoding enc and returns
// the length and SHA-256 of its content (a gzip body decoded).
func (c *followChild) digest(ctx context.Context, client *http.Client, u, enc string) (int64, [32]byte, error) {
	req, err := c.request(ctx, http.MethodGet, u)
	if err != nil {
		return 0, [32]byte{}, err
	}
	req.Header.Set("Accept-Encoding", enc)
	resp, err := client.Do(req)
	if err != nil {
		return 0, [32]byte{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, [32]byte{}, fmt.Errorf("status %d", resp.StatusCode)
	}
	var body io.Reader = io.LimitReader(resp.Body, maxChecked+1)
	if ce := resp.Header.Get("Content-Encoding"); ce != "" {
		if ce != "gzip" || enc != "gzip" {
			return 0, [32]byte{}, fmt.Errorf("Content-Encoding %q for Accept-Encoding %s", ce, enc)
		}
		zr, err := gzip.NewReader(body)
		if err != nil {
			return 0, [32]byte{}, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		body = io.LimitReader(zr, maxChecked+1)
	}
	// A file served without its gzip copy (small ones may be) is checked
	// as identity.
	h := sha256.New()
	n, err := io.Copy(h, body)
	if err != nil {
		return 0, [32]byte{}, err
	}
	if n > maxChecked {
		return 0, [32]byte{}, fmt.Errorf("more than %d bytes", int64(maxChecked))
	}
	return n, [32]byte(h.Sum(nil)), nil
}

// firstDiff is the offset of the first byte where a and b differ (the
// shorter length if one is a prefix of the other).
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
