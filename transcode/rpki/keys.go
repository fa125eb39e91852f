package rpki

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
)

// KeyBits is the size of the RSA keys of the RPKI (RFC 7935 section 3).
const KeyBits = 2048

// DeriveKey returns the 2048-bit RSA key named label under seed. The same
// seed and label give the same key on every run, every platform and every Go
// version: crypto/rsa.GenerateKey ignores the determinism of its reader, so
// the primes are searched here, from a SHA-256 counter-mode stream keyed by
// seed and label, with a small-prime sieve and math/big's Miller-Rabin and
// Baillie-PSW tests. Keys do not depend on the order in which they are
// derived, so callers may derive them concurrently.
//
// These keys are for tests, demos and synthetic repositories: anyone who
// knows the seed knows the key. A key takes some tens of milliseconds;
// callers that reuse keys keep them.
func DeriveKey(seed []byte, label string) (*rsa.PrivateKey, error) {
	s := newKeyStream(seed, label)
	e := big.NewInt(65537)
	one := big.NewInt(1)
	for {
		p := s.prime(KeyBits / 2)
		q := s.prime(KeyBits / 2)
		if p.Cmp(q) == 0 {
			continue
		}
		n := new(big.Int).Mul(p, q)
		if n.BitLen() != KeyBits {
			continue
		}
		pm := new(big.Int).Sub(p, one)
		qm := new(big.Int).Sub(q, one)
		phi := new(big.Int).Mul(pm, qm)
		d := new(big.Int).ModInverse(e, phi)
		if d == nil {
			continue
		}
		key := &rsa.PrivateKey{
			PublicKey: rsa.PublicKey{N: n, E: 65537},
			D:         d,
			Primes:    []*big.Int{p, q},
		}
		if err := key.Validate(); err != nil {
			return nil, fmt.Errorf("derive key %q: %w", label, err)
		}
		key.Precompute()
		return key, nil
	}
}

// keyStream is a deterministic byte stream: SHA-256 over a key and a
// counter.
type keyStream struct {
	key [sha256.Size]byte
	ctr uint64
}

func newKeyStream(seed []byte, label string) *keyStream {
	h := sha256.New()
	h.Write([]byte("rrdp-proxy rpki.DeriveKey v1\x00"))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(seed)))
	h.Write(n[:])
	h.Write(seed)
	h.Write([]byte(label))
	s := new(keyStream)
	h.Sum(s.key[:0])
	return s
}

func (s *keyStream) read(out []byte) {
	var blk [sha256.Size + 8]byte
	copy(blk[:], s.key[:])
	for len(out) > 0 {
		binary.BigEndian.PutUint64(blk[sha256.Size:], s.ctr)
		s.ctr++
		d := sha256.Sum256(blk[:])
		out = out[copy(out, d[:]):]
	}
}

// smallPrimes are the odd primes below 2^13, for sieving.
var smallPrimes = func() []uint64 {
	const limit = 1 << 13
	composite := make([]bool, limit)
	var ps []uint64
	for i := 3; i < limit; i += 2 {
		if composite[i] {
			continue
		}
		ps = append(ps, uint64(i))
		for j := i * i; j < limit; j += 2 * i {
			composite[j] = true
		}
	}
	return ps
}()

// prime returns a prime of exactly bits bits with its two top bits set (so
// that two of them make a modulus of 2*bits bits), with p-1 prime to 65537.
func (s *keyStream) prime(bits int) *big.Int {
	buf := make([]byte, bits/8)
	rem := make([]uint64, len(smallPrimes))
	m := new(big.Int)
	for {
		s.read(buf)
		buf[0] |= 0xc0
		buf[len(buf)-1] |= 1
		base := new(big.Int).SetBytes(buf)
		for i, sp := range smallPrimes {
			rem[i] = m.Mod(base, m.SetUint64(sp)).Uint64()
		}
		// Search base+delta for delta up to 2^16; on failure take new bits.
	next:
		for delta := uint64(0); delta < 1<<16; delta += 2 {
			for i, sp := range smallPrimes {
				if (rem[i]+delta)%sp == 0 {
					continue next
				}
			}
			c := new(big.Int).Add(base, m.SetUint64(delta))
			if c.BitLen() != bits {
				break
			}
			if new(big.Int).Mod(c, big.NewInt(65537)).Int64() == 1 {
				continue
			}
			if c.ProbablyPrime(8) {
				return c
			}
		}
	}
}

// errKeyMismatch says a certificate does not hold the public half of a key.
var errKeyMismatch = errors.New("private key does not match the certificate")
