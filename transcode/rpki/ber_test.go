package rpki

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// toIndefinite re-encodes DER as BER the way RIPE NCC's signer did:
// every constructed element with an indefinite length, and every OCTET
// STRING longer than chunk as a constructed string of chunks.
func toIndefinite(t testing.TB, der []byte, chunk int) []byte {
	t.Helper()
	var out []byte
	for len(der) > 0 {
		tag, constructed, length, hdr, _, err := berHeader(der)
		if err != nil {
			t.Fatal(err)
		}
		body := der[hdr : hdr+length]
		switch {
		case constructed:
			out = append(out, tag...)
			out = append(out, 0x80)
			out = append(out, toIndefinite(t, body, chunk)...)
			out = append(out, 0, 0)
		case len(tag) == 1 && tag[0] == 0x04 && len(body) > chunk:
			out = append(out, 0x24, 0x80)
			for i := 0; i < len(body); i += chunk {
				part := body[i:min(i+chunk, len(body))]
				out = append(out, 0x04)
				out = appendLength(out, len(part))
				out = append(out, part...)
			}
			out = append(out, 0, 0)
		default:
			out = append(out, der[:hdr+length]...)
		}
		der = der[hdr+length:]
	}
	return out
}

func TestBERToDER(t *testing.T) {
	r := buildTestRepo(t, testNow)
	der := r.Objects[testBase+"ca/AS64496.roa"]
	ber := toIndefinite(t, der, 100)
	if bytes.Equal(ber, der) {
		t.Fatal("toIndefinite changed nothing")
	}
	got, err := berToDER(ber)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, der) {
		t.Errorf("berToDER of the BER form differs from the DER original")
	}
	if same, err := berToDER(der); err != nil || &same[0] != &der[0] {
		t.Errorf("berToDER of DER: got a copy or %v, want the input itself", err)
	}
	so, err := ParseSignedObject(ber)
	if err != nil {
		t.Fatal(err)
	}
	if err := so.Verify(mustCA(t, r)); err != nil {
		t.Errorf("BER form: %v", err)
	}

	for _, tt := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "truncated header"},
		{"truncated", []byte{0x30, 0x05, 0x02, 0x01}, "length exceeds input"},
		{"no end-of-contents", []byte{0x30, 0x80, 0x02, 0x01, 0x01}, "missing end-of-contents"},
		{"indefinite primitive", []byte{0x04, 0x80, 0, 0}, "indefinite length on a primitive"},
		{"trailing", []byte{0x30, 0x80, 0, 0, 0x05, 0x00}, "trailing bytes"},
		{"bad chunk", []byte{0x24, 0x80, 0x02, 0x01, 0x01, 0, 0}, "non-OCTET STRING"},
		{"deep", bytes.Repeat([]byte{0x30, 0x80}, 40), "nested too deeply"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := berToDER(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	t.Run("long form made minimal", func(t *testing.T) {
		got, err := berToDER([]byte{0x30, 0x82, 0x00, 0x03, 0x02, 0x01, 0x07})
		if want := []byte{0x30, 0x03, 0x02, 0x01, 0x07}; err != nil || !bytes.Equal(got, want) {
			t.Errorf("got %x, %v; want %x", got, err, want)
		}
	})
}

// mustCA returns the arguments of Verify for an object of the CA of
// buildTestRepo.
func mustCA(t testing.TB, r *testRepo) (*Cert, *CRL, time.Time) {
	t.Helper()
	ca, crl, _ := builtCA(t, r)
	return ca, crl, testNow
}

// fuzzSeeds returns built objects and, when the real data is there, a few
// real ones (read directly: a fuzz target must not skip), plus a BER form.
func fuzzSeeds(f *testing.F, exts ...string) [][]byte {
	var seeds [][]byte
	r := &testRepo{}
	// Built objects only under plain go test: a fuzz worker runs this setup
	// again after each restart, and deriving the keys under coverage
	// instrumentation would stall it.
	if fz := flag.Lookup("test.fuzz"); fz == nil || fz.Value.String() == "" {
		r = buildTestRepo(f, testNow)
	}
	for _, uri := range r.Order {
		for _, e := range exts {
			if strings.HasSuffix(uri, e) {
				seeds = append(seeds, r.Objects[uri])
			}
		}
	}
	root := filepath.Join("..", "..", "..", "shared", "realdata")
	for _, dir := range []string{"rpki-rs/test-data/repository", "rpki-client-openbsd/src/regress/usr.sbin/rpki-client/*", "rpki-commons/src/test/resources/conformance/root"} {
		for _, e := range exts {
			files, _ := filepath.Glob(filepath.Join(root, filepath.FromSlash(dir), "*"+e))
			for i, file := range files {
				if i >= 20 {
					break
				}
				if b, err := os.ReadFile(file); err == nil {
					seeds = append(seeds, b)
				}
			}
		}
	}
	if len(r.Order) > 0 && len(seeds) > 0 {
		seeds = append(seeds, toIndefinite(f, seeds[0], 64)) // seeds[0] is built, so DER
	}
	return seeds
}

func FuzzParseCert(f *testing.F) {
	for _, s := range fuzzSeeds(f, ".cer") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := ParseCert(der)
		if err != nil {
			return
		}
		_ = c.CheckSignatureFrom(c)
		if _, err := resolveResources(c.Resources, c.Resources); err != nil && !c.Resources.IP.InheritV4 &&
			!c.Resources.IP.InheritV6 && !c.Resources.AS.Inherit {
			t.Errorf("resources not within themselves: %v", err)
		}
	})
}

func FuzzParseSignedObject(f *testing.F) {
	for _, s := range fuzzSeeds(f, ".roa", ".mft", ".asa", ".gbr") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		if d, err := berToDER(der); err == nil {
			if again, err := berToDER(d); err != nil || !bytes.Equal(again, d) {
				t.Errorf("berToDER is not idempotent: %v", err)
			}
		}
		so, err := ParseSignedObject(der)
		if err != nil {
			return
		}
		_, _ = ParseROA(so.Content)
		_, _ = ParseManifest(so.Content)
		_, _ = ParseASPA(so.Content)
		_ = checkVCard(so.Content)
	})
}
