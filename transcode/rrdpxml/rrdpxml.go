// Package rrdpxml implements the XML format of the RPKI Repository Delta
// Protocol (RRDP, RFC 8182): a fast, strict, streaming decoder for
// notification, snapshot and delta files, and a canonical encoder.
//
// The decoder reads an io.Reader in bounded memory, hands out publish and
// withdraw elements one at a time and computes the SHA-256 of the raw input
// while it reads. It accepts only what RFC 8182 allows and rejects DOCTYPE,
// entity declarations and processing instructions, so that hostile files
// (billion laughs, XXE) fail fast and cheaply.
//
// What the decoder accepts, where RFC 8182 or XML leave a choice:
//
//   - UTF-8 input, with or without a BOM; an XML declaration only at the
//     very start, version 1.0, encoding UTF-8 or US-ASCII (a subset), in
//     any case. Comments and whitespace anywhere between elements, not
//     inside publish content.
//   - The namespace exactly http://www.ripe.net/rpki/rrdp, declared by an
//     xmlns attribute on the root; child elements may repeat the same
//     declaration. Prefixes are rejected.
//   - version exactly "1"; session_id a UUID (8-4-4-4-12 hex digits, either
//     case, returned in lowercase); serial a decimal integer from 1 to
//     2⁶⁴-1 in canonical form (no sign, no leading zero); hash exactly 64
//     hex digits, either case.
//   - Attribute values may hold the five predefined entities and character
//     references, except to control characters; nothing else.
//   - publish and withdraw URIs are rsync:// URIs, snapshot and delta URIs
//     https:// URIs (lowercase scheme), with a host and a path, no user
//     info, no "." or ".." segment (plain or percent-encoded), only the
//     characters RFC 3986 allows (no control characters, whitespace or
//     non-ASCII bytes), no fragment, a query only in https URIs, at most
//     Limits.MaxURILen bytes; an rsync URI does not end in '/'.
//   - publish content is standard base64 with padding; whitespace (space,
//     tab, CR, LF) anywhere in it is ignored. Empty content is accepted
//     unless Limits.RejectEmptyContent is set.
//   - Within a snapshot or a delta a URI appears once; a snapshot has no
//     withdraw and no hash on publish; a withdraw has a hash.
//   - A notification has exactly one snapshot, first, then deltas in any
//     order with distinct serials no greater than the notification's.
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
	// AllowHTTP accepts http:// besides https:// in the snapshot and
	// delta URIs of a notification. RFC 8182 (section 3.5.1) wants https,
	// so the default refuses them; a lab, or a core-to-edge link of
	// rrdp-proxy nodes on a private network, opts in.
	AllowHTTP bool
}

// Header is what the root element of any RRDP file says.
type Header struct {
	Kind      Kind
	SessionID string // a UUID, in lowercase
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
	// (line from 1, byte offset from 0); End is the offset just after the
	// element (its end tag, or the "/>" of an empty one). The decoding of
	// an element depends only on the input in [Offset, End).
	Line   int
	Offset int64
	End    int64
}
