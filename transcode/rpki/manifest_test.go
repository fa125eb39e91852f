package rpki

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestManifestMarshal(t *testing.T) {
	m := Manifest{
		Number: big.NewInt(300), ThisUpdate: testNow, NextUpdate: testNow.Add(24 * time.Hour),
		Files: []FileHash{NewFileHash("b.roa", []byte("b")), NewFileHash("A.crl", []byte("a")), NewFileHash("a-1_x.cer", nil)},
	}
	der, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Number     *big.Int
		ThisUpdate time.Time `asn1:"generalized"`
		NextUpdate time.Time `asn1:"generalized"`
		Alg        asn1.ObjectIdentifier
		Files      []struct {
			Name string `asn1:"ia5"`
			Hash asn1.BitString
		}
	}
	rest, err := asn1.Unmarshal(der, &got)
	if err != nil || len(rest) != 0 {
		t.Fatalf("unmarshal: %v (%d trailing bytes)", err, len(rest))
	}
	if got.Number.Int64() != 300 || !got.ThisUpdate.Equal(testNow) || !got.Alg.Equal(oidSHA256) {
		t.Errorf("got number %s thisUpdate %s alg %v", got.Number, got.ThisUpdate, got.Alg)
	}
	var names []string
	for _, f := range got.Files {
		names = append(names, f.Name)
		if f.Hash.BitLength != 256 {
			t.Errorf("%s: got hash of %d bits", f.Name, f.Hash.BitLength)
		}
	}
	if want := "A.crl a-1_x.cer b.roa"; strings.Join(names, " ") != want {
		t.Errorf("got files %q, want %q", names, want)
	}
	if h := NewFileHash("b.roa", []byte("b")).Hash; !bytes.Equal(got.Files[2].Hash.Bytes, h[:]) {
		t.Errorf("got hash %x, want %x", got.Files[2].Hash.Bytes, h)
	}
	// The version is omitted: the manifest number comes first.
	if !bytes.HasPrefix(der[3:], []byte{0x02, 0x02, 0x01, 0x2c}) {
		t.Errorf("got %x, want the manifestNumber first", der[:8])
	}
}

func TestManifestErrors(t *testing.T) {
	base := Manifest{Number: big.NewInt(1), ThisUpdate: testNow, NextUpdate: testNow.Add(time.Hour)}
	tests := []struct {
		name   string
		mutate func(*Manifest)
	}{
		{"nil number", func(m *Manifest) { m.Number = nil }},
		{"negative number", func(m *Manifest) { m.Number = big.NewInt(-1) }},
		{"empty validity", func(m *Manifest) { m.NextUpdate = m.ThisUpdate }},
		{"duplicate file", func(m *Manifest) { m.Files = []FileHash{{Name: "a.roa"}, {Name: "a.roa"}} }},
		{"directory in name", func(m *Manifest) { m.Files = []FileHash{{Name: "x/a.roa"}} }},
		{"no extension", func(m *Manifest) { m.Files = []FileHash{{Name: "aroa"}} }},
		{"two dots", func(m *Manifest) { m.Files = []FileHash{{Name: "a.b.roa"}} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base
			tt.mutate(&m)
			if der, err := m.Marshal(); err == nil {
				t.Errorf("got %x, want an error", der)
			}
		})
	}
}

func TestTAL(t *testing.T) {
	key := testKey(t, "ta")
	tal, err := TAL([]string{"https://h/ta.cer", "rsync://h/ta.cer"}, &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	head, b64, ok := strings.Cut(string(tal), "\n\n")
	if !ok || head != "https://h/ta.cer\nrsync://h/ta.cer" {
		t.Fatalf("got TAL head %q", head)
	}
	for _, line := range strings.Split(strings.TrimSuffix(b64, "\n"), "\n") {
		if len(line) > 64 {
			t.Errorf("got base64 line of %d characters, want at most 64", len(line))
		}
	}
	der, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(b64, "\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil || !key.PublicKey.Equal(pub) {
		t.Errorf("TAL key does not match: %v", err)
	}
	if _, err := TAL([]string{"http://h/ta.cer"}, &key.PublicKey); err == nil {
		t.Errorf("http URI: got no error")
	}
}
