package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/irpki/rrdp-proxy/cmd/internal/cli"
	"github.com/irpki/rrdp-proxy/transcode/rpki/compact"
)

const keygenAbout = `Make the key that signs the compact format (rrdp-proxy compact): an
Ed25519 key pair, written as DIR/key.pem (the private key, PKCS #8 PEM, mode
0600) and DIR/key.pub (the public key, PEM: the trust file relying parties
give to rrdp-proxy sync --trust). Existing files are never overwritten.`

func keygenCommand(stdout io.Writer) *cli.Command {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	var out string
	fs.StringVar(&out, "out", "", "write key.pem and key.pub into `DIR` (required; made if missing)")
	return &cli.Command{
		Name: "keygen", Args: "--out DIR", Summary: "make the key that signs the compact format",
		About: keygenAbout, Flags: fs, MaxArgs: 0,
		Run: func([]string) error { return keygen(out, stdout) },
	}
}

func keygen(dir string, stdout io.Writer) error {
	if dir == "" {
		return cli.Usagef("--out is required")
	}
	priv, pub := filepath.Join(dir, "key.pem"), filepath.Join(dir, "key.pub")
	for _, p := range []string{priv, pub} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("keygen: %s exists; not overwriting it", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("keygen: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	skPEM, err := compact.MarshalPrivateKey(sk)
	if err != nil {
		return err
	}
	pkPEM, err := compact.MarshalPublicKey(pk)
	if err != nil {
		return err
	}
	if err := writeNew(priv, skPEM, 0o600); err != nil {
		return err
	}
	if err := writeNew(pub, pkPEM, 0o644); err != nil {
		return err
	}
	id, err := compact.KeyID(pk)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (private, 0600) and %s (trust file); key id %x\n", priv, pub, id)
	return nil
}

// writeNew writes a file that must not exist yet, with mode.
func writeNew(name string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("keygen: write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("keygen: write %s: %w", name, err)
	}
	return f.Close()
}
