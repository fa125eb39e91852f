module github.com/irpki/rrdp-proxy

go 1.26.8

require (
	golang.org/x/crypto v0.55.0
	google.golang.org/protobuf v1.36.12
)
