package rpki

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest/realdata"
)

func FuzzParseTAL(f *testing.F) {
	d := realdata.Path(f, "krill-sync", "test-resources", "validation", "good")
	b, err := os.ReadFile(filepath.Join(d, "ta.tal"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")))
	f.Add(append([]byte("# a comment\n"), b...))
	f.Add([]byte("rsync://example.net/ta.cer\n\nAAAA\n"))
	f.Add([]byte("https://example.net/ta.cer\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tal, err := ParseTAL(data)
		if err != nil {
			return
		}
		if len(tal.URIs) == 0 || len(tal.SPKI) == 0 {
			t.Fatalf("accepted a TAL without URIs or key: %q", data)
		}
		// What parsed must parse again the same once re-encoded.
		key, err := parseRSAKey(tal.SPKI)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := TAL(tal.URIs, key)
		if err != nil {
			t.Fatalf("re-encode %v: %v", tal.URIs, err)
		}
		again, err := ParseTAL(enc)
		if err != nil || !slices.Equal(again.URIs, tal.URIs) || !bytes.Equal(again.SPKI, tal.SPKI) {
			t.Fatalf("round trip: %v, %v", again, err)
		}
	})
}

// FuzzValidatePublicationPoint validates the Krill repository with one
// object replaced by the fuzzer's bytes: whatever the bytes, the run ends,
// the other publication points keep their VRPs, and a rejection names the
// object.
func FuzzValidatePublicationPoint(f *testing.F) {
	d := realdata.Path(f, "krill-sync", "test-resources", "validation", "good")
	objects, order := readSnapshot(f, filepath.Join(d, "rrdp", "cd0c701d-ff09-4e95-8f2a-fa24de875fb5", "3", "0ab6e84be3ec9561", "snapshot.xml"))
	ta := krillTA(f, d)
	now := time.Date(2023, 2, 14, 0, 0, 0, 0, time.UTC)
	for i, u := range order {
		if i%7 == 0 || strings.HasSuffix(u, ".mft") || strings.HasSuffix(u, ".crl") {
			f.Add(uint8(i), objects[u])
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		uri := order[int(which)%len(order)]
		src := MapSource{}
		for k, v := range objects {
			src[k] = v
		}
		src[uri] = data
		v, err := NewValidator(Config{Source: src, Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		res, err := v.Validate(context.Background(), []TrustAnchor{ta}, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.VRPs) > 100 {
			t.Fatalf("%d VRPs from a repository of 100", len(res.VRPs))
		}
		for _, p := range res.Problems {
			if p.URI == "" || p.Err == nil {
				t.Fatalf("a problem without URI or reason: %+v", p)
			}
		}
		for _, ca := range res.CAs {
			if ca.URI == "" {
				t.Fatalf("a CA result without URI: %+v", ca)
			}
		}
	})
}

func FuzzURIPath(f *testing.F) {
	for _, s := range []string{"rsync://localhost/repo/ta/ta.cer", "rsync://h/a/../b", "rsync://h//x", "RSYNC://h/a", "rsync://h/a?q", "https://h/a", "rsync://h/.rrdp-proxy-sync"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		p, err := URIPath(uri)
		if err != nil {
			return
		}
		if filepath.IsAbs(p) || !filepath.IsLocal(p) {
			t.Fatalf("%q maps to %q, outside the tree", uri, p)
		}
		for _, seg := range strings.Split(filepath.ToSlash(p), "/") {
			if seg == "" || seg == "." || seg == ".." || seg == SyncMarker {
				t.Fatalf("%q maps to %q with segment %q", uri, p, seg)
			}
		}
	})
}
