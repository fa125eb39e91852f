package proxy

import (
	"strconv"

	"github.com/irpki/rrdp-proxy/proxy/status"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// report takes the status.Report of /status and /status.json.
func (s *Server) report() *status.Report {
	now := s.cfg.Now()
	rep := &status.Report{Node: s.cfg.Node, Version: s.cfg.Version, Started: s.started, Now: now, Ready: true, Fleet: s.cfg.Fleet != nil}
	rep.Requests, rep.BytesOut = s.other.total(), s.other.bytesOut.Load()
	for _, r := range s.tab.Load().repos {
		sr := status.Repo{
			Name: r.cfg.Name, Mode: string(r.cfg.Mode), Origin: r.cfg.Origin, Interval: r.live.Load().interval,
			NotificationXML: r.cfg.Base + "notification.xml", NotificationBin: r.cfg.Base + "notification.bin",
			Hits: r.m.hits.Load(), Misses: r.m.misses.Load(), Requests: r.m.total(), BytesOut: r.m.bytesOut.Load(),
			Errors: map[string]uint64{"pull": r.m.pullErrors.Load()},
		}
		rep.Requests += sr.Requests
		rep.BytesOut += sr.BytesOut
		if h := s.cfg.Cache.Head(r.cfg.Key); h != nil {
			sr.Session, sr.Serial, sr.StateTime = h.Session, h.Serial, h.Time
			for _, f := range h.Files {
				if !f.Expires.IsZero() || f.Gzip {
					continue // retained or a compressed copy
				}
				bin := formatOf(f.Format) == formatBin
				switch f.Kind {
				case rrdpxml.KindSnapshot:
					if bin {
						sr.SnapshotBin += f.Size
					} else {
						sr.SnapshotXML += f.Size
					}
				case rrdpxml.KindDelta:
					if bin {
						sr.DeltasBin += f.Size
					} else {
						sr.DeltasXML += f.Size
						sr.Deltas++
					}
				}
			}
		} else {
			rep.Ready = false
		}
		if st, ok := r.followStats(); ok {
			sr.LastSuccess, sr.LastError, sr.LastErr = st.LastSuccess, st.LastError, st.LastErr
			for _, e := range followErrors(st) {
				sr.Errors[e.kind] = e.n
			}
		}
		fs := s.fleetStatus(r.cfg.Name)
		sr.Role, sr.Holder, sr.FleetErr = fs.Role, fs.Holder, fs.Err
		if fs.RedisUp {
			rep.RedisUp = true
		}
		rep.Repos = append(rep.Repos, sr)
	}
	if s.cfg.Validation != nil {
		rep.Validation = s.cfg.Validation.Status()
	}
	cs := s.cfg.Cache.Stats()
	rep.Cache = status.Cache{PinnedBytes: cs.PinnedBytes, CachedBytes: cs.CachedBytes, ColdBytes: cs.ColdBytes, Hits: cs.Hits,
		Misses: cs.Misses, Fills: cs.Fills, Shared: cs.Shared}
	for i, b := range cs.TierBytes {
		rep.Cache.Tiers = append(rep.Cache.Tiers, status.Tier{Name: "tier" + strconv.Itoa(i+1), Bytes: b})
	}
	return rep
}
