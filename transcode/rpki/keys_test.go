package rpki

import (
	"bytes"
	"crypto/x509"
	"testing"
)

func TestDeriveKeyDeterministic(t *testing.T) {
	tests := []struct {
		name  string
		seed  string
		label string
	}{
		{"ta", "seed-1", "ta"},
		{"ca", "seed-1", "ca/0"},
		{"other seed", "seed-2", "ta"},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k1, err := DeriveKey([]byte(tt.seed), tt.label)
			if err != nil {
				t.Fatal(err)
			}
			k2, err := DeriveKey([]byte(tt.seed), tt.label)
			if err != nil {
				t.Fatal(err)
			}
			b1 := x509.MarshalPKCS1PrivateKey(k1)
			b2 := x509.MarshalPKCS1PrivateKey(k2)
			if !bytes.Equal(b1, b2) {
				t.Fatalf("same seed and label gave two different keys")
			}
			if got := k1.N.BitLen(); got != KeyBits {
				t.Errorf("got modulus of %d bits, want %d", got, KeyBits)
			}
			if prev, ok := seen[string(b1)]; ok {
				t.Errorf("key equals the one of %s", prev)
			}
			seen[string(b1)] = tt.name
		})
	}
}

func BenchmarkDeriveKey(b *testing.B) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := DeriveKey([]byte("bench"), string(rune('a'+i%26))+string(rune(i))); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
