package rp

import "github.com/irpki/rrdp-proxy/transcode/rpki/repotest/tlsca"

// PKI is the private CA and server certificate of an [Origin]; see
// [tlsca.PKI].
type PKI = tlsca.PKI

// PKIConfig configures NewPKI; see [tlsca.Config]. The zero value works.
type PKIConfig = tlsca.Config

// NewPKI creates a CA and a server certificate in dir: [tlsca.New].
func NewPKI(dir string, cfg PKIConfig) (*PKI, error) { return tlsca.New(dir, cfg) }
