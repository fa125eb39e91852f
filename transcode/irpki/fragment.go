package irpki

import (
	"crypto/sha256"

	"google.golang.org/protobuf/encoding/protowire"
)

// The Append functions write a snapshot .bin in pieces, byte for byte as
// XMLToBin writes it for objects in the same order: the head (serial and
// session), each group (its start, its entries, its pin), the trailer. A
// caller that keeps the pieces of unchanged groups and entries from one
// serial to the next (proxy/follow's fragments) assembles the next .bin
// without encoding it again. A group's pin is the SHA-256 of its repo
// field (AppendRepoField) followed by its entries.

// AppendSnapshotHead appends the fields that open a snapshot: serial and
// session.
func AppendSnapshotHead(b []byte, session string, serial uint64) []byte {
	if serial != 0 {
		b = protowire.AppendTag(b, fSerial, protowire.VarintType)
		b = protowire.AppendVarint(b, serial)
	}
	if session != "" {
		b = protowire.AppendTag(b, fSession, protowire.BytesType)
		b = protowire.AppendString(b, session)
	}
	return b
}

// AppendRepoField appends a group's repo field.
func AppendRepoField(b []byte, repo string) []byte {
	if repo == "" {
		return b
	}
	b = protowire.AppendTag(b, fRepo, protowire.BytesType)
	return protowire.AppendString(b, repo)
}

// AppendGroupStart appends the start of the group of repo whose entries
// take entries bytes: the field's tag and length, and the repo field.
func AppendGroupStart(b []byte, repo string, entries int64) []byte {
	body := entries + pinFieldSize
	if repo != "" {
		body += int64(protowire.SizeTag(fRepo) + protowire.SizeBytes(len(repo)))
	}
	b = protowire.AppendTag(b, fCAs, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(body))
	return AppendRepoField(b, repo)
}

// entryBody is the size of a SnapshotEntry's fields (proto3: an empty
// name or content is omitted).
func entryBody(name string, n int) int {
	body := 0
	if name != "" {
		body += protowire.SizeTag(fName) + protowire.SizeBytes(len(name))
	}
	if n > 0 {
		body += protowire.SizeTag(fContent) + protowire.SizeBytes(n)
	}
	return body
}

// SnapshotEntrySize is the size of AppendSnapshotEntry's bytes.
func SnapshotEntrySize(name string, content []byte) int {
	return protowire.SizeTag(fEntries) + protowire.SizeBytes(entryBody(name, len(content)))
}

// AppendSnapshotEntry appends the entry of the object name with content.
// The content is the last thing written: it ends the returned slice.
func AppendSnapshotEntry(b []byte, name string, content []byte) []byte {
	return append(AppendSnapshotEntryHead(b, name, len(content)), content...)
}

// AppendSnapshotEntryHead appends the bytes of an entry that come before
// its n bytes of content: AppendSnapshotEntry without the content.
func AppendSnapshotEntryHead(b []byte, name string, n int) []byte {
	b = protowire.AppendTag(b, fEntries, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(entryBody(name, n)))
	if name != "" {
		b = protowire.AppendTag(b, fName, protowire.BytesType)
		b = protowire.AppendString(b, name)
	}
	if n > 0 {
		b = protowire.AppendTag(b, fContent, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
	}
	return b
}

// AppendPin appends a group's pin field, which ends the group.
func AppendPin(b []byte, pin [sha256.Size]byte) []byte {
	b = protowire.AppendTag(b, fPin, protowire.BytesType)
	return protowire.AppendBytes(b, pin[:])
}

// AppendSnapshotTrailer appends the fields that close a snapshot: the
// format version and the kind.
func AppendSnapshotTrailer(b []byte) []byte {
	b = protowire.AppendTag(b, fVersion, protowire.VarintType)
	b = protowire.AppendVarint(b, Version)
	b = protowire.AppendTag(b, fKind, protowire.VarintType)
	return protowire.AppendVarint(b, kindSnapshot)
}

// SplitURI splits an object URI into its group (the directory URI, up to
// and including the last '/') and its name within the group.
func SplitURI(uri string) (repo, name string) { return splitURI(uri) }
