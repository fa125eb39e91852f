// Package rrdpxml implements the XML format of the RPKI Repository Delta
// Protocol (RRDP, RFC 8182): a fast, strict, streaming decoder for
// notification, snapshot and delta files, and a canonical encoder.
//
// The decoder reads an io.Reader in bounded memory, hands out publish and
// withdraw elements one at a time and computes the SHA-256 of the raw input
// while it reads. It accepts only what RFC 8182 allows and rejects DOCTYPE,
// entity declarations and processing instructions, so that hostile files
// (billion laughs, XXE) fail fast and cheaply.
package rrdpxml

import "fmt"

// Namespace is the one XML namespace RFC 8182 allows.
const Namespace = "http://www.ripe.net/rpki/rrdp"

// Kind tells the three RRDP files apart.
type Kind uint8

// The kinds of RRDP file.
const (
	KindNotification Kind = iota + 1
	KindSnapshot
	KindDelta
)

func (k Kind) String() string {
	switch k {
	case KindNotification:
		return "notification"
	case KindSnapshot:
		return "snapshot"
	case KindDelta:
		return "delta"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Limits caps what a decoder accepts. A zero field takes its default.
type Limits struct {
	// MaxFileSize caps the bytes of XML input. Default 4 GiB.
	MaxFileSize int64
	// MaxObjectSize caps the decoded bytes of one published object.
	// Default 32 MiB.
	MaxObjectSize int
	// MaxObjects caps the publish and withdraw elements of one file.
	// Default 20,000,000.
	MaxObjects int
	// MaxURILen caps the bytes of any URI. Default 2048.
	MaxURILen int
	// MaxDeltas caps the delta references of a notification. Default 100,000.
	MaxDeltas int
	// RejectEmptyContent rejects a publish element without content (an
	// empty object) with ErrEmptyContent. By default such an element is
	// accepted with an empty Content: RFC 8182's schema types the content
	// xsd:base64Binary, which may be empty, and RIPE NCC's production
	// server has published such elements (rpki-rs test data).
	RejectEmptyContent bool
}

// Header is what the root element of any RRDP file says.
type Header struct {
	Kind      Kind
	SessionID string // a UUID, lowercase as written
	Serial    uint64
}

// Notification is a decoded notification file.
type Notification struct {
	SessionID string
	Serial    uint64
	Snapshot  SnapshotRef
	Deltas    []DeltaRef // in document order
}

// SnapshotRef is the snapshot element of a notification.
type SnapshotRef struct {
	URI  string
	Hash [32]byte
}

// DeltaRef is one delta element of a notification.
type DeltaRef struct {
	Serial uint64
	URI    string
	Hash   [32]byte
}

// Element is one publish or withdraw element of a snapshot or delta.
type Element struct {
	Withdraw bool
	URI      string
	// Hash is the hash attribute: the SHA-256 of the object replaced
	// (publish) or withdrawn (withdraw). HasHash tells whether it was set.
	Hash    [32]byte
	HasHash bool
	// Content is the base64-decoded object of a publish. It is valid only
	// until the next call to Next.
	Content []byte
	// Line and Offset locate the element's start tag in the input
	// (line from 1, byte offset from 0).
	Line   int
	Offset int64
}
