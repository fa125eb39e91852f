package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/irpki/rrdp-proxy/conf"
	"github.com/irpki/rrdp-proxy/proxy"
	"github.com/irpki/rrdp-proxy/proxy/fleet"
)

// serverConfig returns what the node adds to the server's configuration
// beyond the table's plain values: the TLS certificate (from n.cert, which
// a reload replaces: connections open keep theirs, new handshakes get the
// new one), the admin listener's settings, the access log, and the fleet's
// statuses.
func (n *node) serverConfig(cfg *conf.Config) (proxy.Config, error) {
	s := &cfg.Server
	var pc proxy.Config
	if s.Certificate != nil {
		n.cert.Store(s.Certificate)
		pc.TLS = &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return n.cert.Load(), nil }}
	}
	pc.AdminOnly = s.AdminListen != ""
	pc.PProf = s.PProf
	if s.AccessLog != "" && s.AccessLog != "off" {
		pc.AccessLogFormat = s.AccessLog
		switch {
		case s.AccessLogFile != "":
			r, err := openReopener(s.AccessLogFile)
			if err != nil {
				return pc, err
			}
			n.access = r
			pc.AccessLog = r
		case n.opts.Stderr != nil:
			pc.AccessLog = n.opts.Stderr
		default:
			pc.AccessLog = io.Discard
		}
	}
	if n.fleet != nil {
		pc.Fleet = n.fleetStatus
	}
	return pc, nil
}

// fleetStatus is the server's Config.Fleet: what this node does for the
// repository called name (its key in the fleet, conf.Repository.Key).
func (n *node) fleetStatus(name string) (proxy.FleetStatus, bool) {
	st, ok := n.board.Status(name)
	if !ok {
		return proxy.FleetStatus{}, false
	}
	role := proxy.RoleFollower
	switch st.Role {
	case fleet.Holder:
		role = proxy.RoleHolder
	case fleet.Solo:
		role = proxy.RoleSolo
	}
	return proxy.FleetStatus{Role: role, Holder: st.Holder, RedisUp: st.RedisUp, Leases: st.Leases, Err: st.Err}, true
}

// reopener is a file opened for appending that Reopen opens again under
// its name, for log rotation: logrotate renames the file, then SIGHUP
// makes the process write to a new one.
type reopener struct {
	name string
	mu   sync.Mutex
	f    *os.File
}

func openReopener(name string) (*reopener, error) {
	r := &reopener{name: name}
	if err := r.Reopen(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *reopener) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Write(b)
}

// Reopen opens the file again; on error the old one stays in use.
func (r *reopener) Reopen() error {
	f, err := os.OpenFile(r.name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open the access log: %w", err)
	}
	r.mu.Lock()
	old := r.f
	r.f = f
	r.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

func (r *reopener) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Close()
}
