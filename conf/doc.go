// Package conf will implement the TOML configuration of rrdp-proxy:
// loading, defaults and strict validation, composing the Config structs of
// the other packages. Only conf and cmd read files, flags or the
// environment. Nothing is here yet.
package conf
