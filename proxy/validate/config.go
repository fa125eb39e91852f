package validate

import (
	"compress/gzip"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/irpki/rrdp-proxy/proxy/follow"
	"github.com/irpki/rrdp-proxy/transcode/rpki"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// Config configures a Validator. TALs and Open are required; every other
// zero field takes the default in its comment.
type Config struct {
	// TALs are the trust anchors validated from (rpki.TrustAnchor, read
	// by the caller: the TAL and the TA certificate beside it).
	TALs []rpki.TrustAnchor
	// TALFiles name the TAL files, for the metadata of WriteVRPs.
	TALFiles []string
	// Open returns the bytes of a file of a head: the only way the
	// Validator reads files (cache.ReadFile with a cache.Cache's Blob
	// fits). For a composite snapshot.bin it is asked for the part list
	// and each part as files of one blob (File.Sum, File.Size; -1 for
	// the part list), and the Validator keeps the slices it returns as
	// its objects (views, see view.go): they must not change.
	Open func(ctx context.Context, f follow.File) ([]byte, error)
	// Gate holds back the serials that break Rules (see the package
	// documentation); false only observes: every serial is published, and
	// the rules say only what a gate would have held.
	Gate bool
	// Rules are what a serial is judged by.
	Rules Rules
	// FetchTA fetches a TA certificate from a TAL's https URI when the
	// file beside the TAL is missing (rpki.Config.FetchTA; nil: not
	// fetched).
	FetchTA func(ctx context.Context, uri string) ([]byte, error)
	// Interval is the time between revalidations of the state served when
	// no serial arrives (10m): objects expire, manifests go stale.
	Interval time.Duration
	// History is how many runs that changed something are remembered for
	// the status page (20).
	History int
	// Workers is rpki.Config.Workers (GOMAXPROCS).
	Workers int
	// Limits caps what a snapshot is decoded with (rrdpxml's defaults).
	Limits rrdpxml.Limits
	// Node names the machine in the metadata of WriteVRPs.
	Node string
	// Released, if set, is asked whether a held serial was released
	// elsewhere, when the gate holds h and at each attempt of the
	// follower to publish it again: a node of a fleet that does not
	// publish the repository queues an operator's release for the one
	// that does (proxy/fleet). True publishes h as Release would; by
	// says who released it, for the log.
	Released func(ctx context.Context, key string, h *follow.Head) (by string, ok bool)
	// Compact, if set, publishes the compact format of the repositories
	// SetCompact names (see Compact).
	Compact *Compact
	// Now is the clock (time.Now); Logger the log (discarded).
	Now    func() time.Time
	Logger *slog.Logger
}

// Rules decide which serials the gate holds. The zero value breaks
// nothing.
type Rules struct {
	// MaxVRPLoss holds a serial that removes more than this fraction of
	// the VRPs served (0.05 for 5%); zero: no such rule. VRPs a serial
	// replaces by others count as removed.
	MaxVRPLoss float64
	// MaxASPALoss is the same for ASPAs (by customer AS).
	MaxASPALoss float64
	// CAInvalid holds a serial that makes a CA that validated fail (its
	// certificate, manifest, CRL or a listed file). A CA that leaves its
	// parent's publication point does not count.
	CAInvalid bool
}

// Describe returns the rules in words, for the status page.
func (r Rules) Describe() []string {
	var out []string
	if r.MaxVRPLoss > 0 {
		out = append(out, "hold a serial that removes more than "+pct(r.MaxVRPLoss)+" of the VRPs")
	}
	if r.MaxASPALoss > 0 {
		out = append(out, "hold a serial that removes more than "+pct(r.MaxASPALoss)+" of the ASPAs")
	}
	if r.CAInvalid {
		out = append(out, "hold a serial that makes a valid CA invalid")
	}
	return out
}

func (c Config) withDefaults() (Config, error) {
	if len(c.TALs) == 0 {
		return c, fmt.Errorf("validate: no trust anchor")
	}
	if c.Open == nil {
		return c, fmt.Errorf("validate: no Open")
	}
	if c.Rules.MaxVRPLoss < 0 || c.Rules.MaxVRPLoss > 1 || c.Rules.MaxASPALoss < 0 || c.Rules.MaxASPALoss > 1 {
		return c, fmt.Errorf("validate: a loss limit outside 0..1")
	}
	if c.Interval <= 0 {
		c.Interval = 10 * time.Minute
	}
	if c.History <= 0 {
		c.History = 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if cc := c.Compact; cc != nil {
		if cc.Signer == nil || cc.Store == nil {
			return c, fmt.Errorf("validate: compact without a signer or a store")
		}
		d := *cc
		if d.Retention <= 0 {
			d.Retention = 2 * time.Hour
		}
		if d.GzipLevel == 0 {
			d.GzipLevel = gzip.BestCompression
		}
		c.Compact = &d
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

func pct(f float64) string {
	return strconv.FormatFloat(f*100, 'f', -1, 64) + "%"
}

func uitoa(n uint64) string { return strconv.FormatUint(n, 10) }
