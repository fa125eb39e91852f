package conf

import (
	"fmt"
	"io"
	"os"

	"github.com/irpki/rrdp-proxy/transcode/rpki/compact"
)

// maxKeyFile caps a key file read.
const maxKeyFile = 64 << 10

// compact checks [compact] and the repositories that serve the format,
// and reads the keys.
func (p *parser) compact(c *Config) {
	for i := range c.Repositories {
		r := &c.Repositories[i]
		if !r.Serves("compact") {
			continue
		}
		key := fmt.Sprintf("repository[%d].formats", i)
		switch {
		case c.Compact == nil:
			p.errorf(key, "\"compact\" needs a [compact] table with the signing key")
		case c.Validate == nil:
			p.errorf(key, "\"compact\" needs [validate]: the compact format carries only what validated")
		}
	}
	cc := c.Compact
	if cc == nil {
		return
	}
	if cc.MaxDeltas < 1 {
		p.errorf("compact.max_deltas", "want at least 1, got %d", cc.MaxDeltas)
	}
	cc.KeyPEM, cc.RolloverPEM = nil, nil
	if cc.Key == "" {
		p.errorf("compact.key", "missing: the private key file the compact files are signed with (rrdp-proxy keygen --out DIR writes DIR/key.pem)")
	} else {
		cc.Key = p.path(cc.Key)
		cc.KeyPEM = p.readKey("compact.key", cc.Key)
	}
	if cc.RolloverKey != "" {
		cc.RolloverKey = p.path(cc.RolloverKey)
		cc.RolloverPEM = p.readKey("compact.rollover_key", cc.RolloverKey)
		if cc.KeyPEM != nil && cc.RolloverPEM != nil && string(cc.KeyPEM) == string(cc.RolloverPEM) {
			p.errorf("compact.rollover_key", "the same key as compact.key: a rollover needs the other key")
		}
	}
}

// readKey reads and checks the private key file name: readable by its
// owner alone (as ssh requires of its keys), an Ed25519 PKCS #8 key.
func (p *parser) readKey(key, name string) []byte {
	// One open: the mode checked is that of the file read.
	f, err := os.Open(name)
	if err != nil {
		p.errorf(key, "%v", err)
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		p.errorf(key, "%v", err)
		return nil
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		p.errorf(key, "%s has mode %04o: a private key must be readable by its owner only (chmod 600 %s)", name, m, name)
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err == nil && len(b) > maxKeyFile {
		err = fmt.Errorf("%s: over %d bytes", name, maxKeyFile)
	}
	if err != nil {
		p.errorf(key, "%v", err)
		return nil
	}
	if _, err := compact.ParsePrivateKey(b); err != nil {
		p.errorf(key, "%s: %v", name, err)
		return nil
	}
	return b
}
