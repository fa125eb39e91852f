package repotest

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
)

// keyStore hands out the derived keys of a repository. Deriving a key
// takes tens of milliseconds; with a cache directory each key is derived
// once and then read back (a fraction of a millisecond). Without one,
// keys stay in memory for the life of the store.
type keyStore struct {
	seed []byte
	dir  string // cache directory, "" for none

	mu  sync.Mutex
	mem map[string]*rsa.PrivateKey // all keys without dir; the EE pool always
}

func newKeyStore(seed []byte, dir string) *keyStore {
	return &keyStore{seed: seed, dir: dir, mem: map[string]*rsa.PrivateKey{}}
}

func caKeyLabel(id int) string { return "ca-" + strconv.Itoa(id) }
func eeKeyLabel(i int) string  { return "ee-" + strconv.Itoa(i) }

// path is the cache file of a key: a hash of the seed and the label, so
// that one cache serves any number of seeds.
func (k *keyStore) path(label string) string {
	h := sha256.New()
	h.Write([]byte("repotest key\x00"))
	h.Write(k.seed)
	h.Write([]byte{0})
	h.Write([]byte(label))
	name := hex.EncodeToString(h.Sum(nil)[:20])
	return filepath.Join(k.dir, name[:2], name[2:]+".der")
}

// get returns the key called label, keeping it in memory when keep is set
// or there is no cache directory.
func (k *keyStore) get(label string, keep bool) (*rsa.PrivateKey, error) {
	k.mu.Lock()
	key, ok := k.mem[label]
	k.mu.Unlock()
	if ok {
		return key, nil
	}
	if k.dir != "" {
		key, err := k.read(label)
		if err != nil {
			return nil, err
		}
		if key != nil {
			if keep {
				k.remember(label, key)
			}
			return key, nil
		}
	}
	key, err := rpki.DeriveKey(k.seed, label)
	if err != nil {
		return nil, err
	}
	if k.dir != "" {
		if err := k.write(label, key); err != nil {
			return nil, err
		}
	}
	if keep || k.dir == "" {
		k.remember(label, key)
	}
	return key, nil
}

func (k *keyStore) remember(label string, key *rsa.PrivateKey) {
	k.mu.Lock()
	k.mem[label] = key
	k.mu.Unlock()
}

// read returns the cached key, or nil when it is not cached or the file is
// damaged (it is derived again then).
func (k *keyStore) read(label string) (*rsa.PrivateKey, error) {
	p := k.path(label)
	der, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read key cache: %w", err)
	}
	key, err := x509.ParsePKCS1PrivateKey(der)
	if err != nil || key.N.BitLen() != rpki.KeyBits {
		return nil, nil
	}
	return key, nil
}

func (k *keyStore) write(label string, key *rsa.PrivateKey) error {
	p := k.path(label)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("write key cache: %w", err)
	}
	// A unique temporary name: workers may derive the same key at once.
	f, err := os.CreateTemp(filepath.Dir(p), ".key-*")
	if err != nil {
		return fmt.Errorf("write key cache: %w", err)
	}
	_, err = f.Write(x509.MarshalPKCS1PrivateKey(key))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write key cache %s: %w", p, err)
	}
	return nil
}
