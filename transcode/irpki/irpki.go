// Package irpki implements the iRPKI repository layout of Schulmann and
// Vogel, "Pruning the Tree: Rethinking RPKI Architecture From The Ground Up"
// (2025), Appendix B: the snapshots, deltas and notifications of RRDP
// (RFC 8182) as protocol buffers, objects grouped per publication point,
// and the transcoding between that layout and RFC 8182's XML.
//
// The codec here writes and reads the protobuf wire format by hand, in a
// stream, so that memory grows with the output and not with the input, and
// so that the bytes are the same on every node: fields in field-number order
// (exactly what proto.MarshalOptions{Deterministic: true} gives for the
// messages of package irpkipb; a test holds the two together), groups in the
// order of their first object in the XML, entries in XML order.
//
// Every group carries a pin, the SHA-256 of its own encoding without the pin
// field, so that a reader can check one group alone.
package irpki

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

// Version is the layout version written into every .bin file.
const Version = 1

// Field numbers of proto/irpkipb/irpki.proto used by the hand-written codec.
const (
	fSerial   = 1
	fSession  = 2
	fSnapRef  = 3 // Notification.snapshot
	fDeltaRef = 4 // Notification.deltas
	fCAs      = 43
	fVersion  = 100
	fKind     = 101

	fRepo      = 1
	fEntries   = 2 // CA.entries and DeltaCA.modified
	fWithdrawn = 3 // DeltaCA.withdrawn
	fPin       = 100

	fName         = 1
	fContent      = 2 // SnapshotEntry.content
	fHash         = 2 // DeltaEntry.hash
	fDeltaContent = 3 // DeltaEntry.content
)

// The values of the FileKind enum of irpki.proto.
const (
	kindNotification = 1
	kindSnapshot     = 2
	kindDelta        = 3
)

func fileKind(k rrdpxml.Kind) uint64 {
	switch k {
	case rrdpxml.KindNotification:
		return kindNotification
	case rrdpxml.KindSnapshot:
		return kindSnapshot
	case rrdpxml.KindDelta:
		return kindDelta
	}
	return 0
}

// splitURI splits an object URI into its group (the directory URI, up to
// and including the last '/') and its name within the group.
func splitURI(uri string) (repo, name string) {
	i := strings.LastIndexByte(uri, '/')
	return uri[:i+1], uri[i+1:]
}

// FilePath returns the path, relative to the directory of the
// notification, under which rrdp-proxy publishes a snapshot or delta it
// wrote: "<session>/<serial>/<16 hex digits of its SHA-256>/snapshot.bin"
// (or delta, or .xml). It carries the session, the serial and a hash
// component, so that it is unique, hard to guess and names immutable
// bytes, as Krill's paths do.
func FilePath(kind rrdpxml.Kind, f Format, session string, serial uint64, sum [32]byte) string {
	return fmt.Sprintf("%s/%d/%s/%s.%s", session, serial, hex.EncodeToString(sum[:8]), kind, f)
}

// Result describes one transcoded file.
type Result struct {
	Kind    rrdpxml.Kind
	Session string
	Serial  uint64
	Groups  int
	Objects int // publishes and withdraws
	// Types counts objects by file extension ("roa", "mft", "cer", ...;
	// "" for a name without one).
	Types   map[string]int
	InSize  int64
	InSum   [32]byte
	OutSize int64
	OutSum  [32]byte
}

// Options tunes a transcode. The zero value works.
type Options struct {
	// Limits caps what is read; zero fields take rrdpxml's defaults.
	Limits rrdpxml.Limits
	// Session, when set, replaces the session id in the output. Edge nodes
	// regenerate XML from .bin under a session id derived from the
	// upstream's, so that no RP sees two byte strings for one session and
	// serial (see DESIGN.md).
	Session string
}

func extOf(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return ""
}
