package compact

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// The state file of a client that follows several publications holds
// each one's verified state apart, by name (its notification URL), so
// that each is advanced by its own deltas:
//
//	"rrdp-proxy compact client states 2\n"
//	then, per publication, protobuf field 1 (bytes): an entry of
//	field 1 (string) the name and field 2 (bytes) the state (State.Marshal,
//	a CompactSnapshot).
//
// The state file of version 1, written before a client followed more than
// one publication, is a bare CompactSnapshot without a name; it starts
// with the tag of field 1 or 2 (0x08, 0x12), never with the magic's "r".
// UnmarshalStates returns it as the legacy state, for the caller to give
// to the publication it belongs to.
const statesMagic = "rrdp-proxy compact client states 2\n"

// MarshalStates encodes the states of publications by name for a client's
// state file, in the order given; a nil state is left out.
func MarshalStates(names []string, states []*State) []byte {
	b := []byte(statesMagic)
	for i, s := range states {
		if s == nil {
			continue
		}
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.BytesType)
		e = protowire.AppendString(e, names[i])
		e = protowire.AppendTag(e, 2, protowire.BytesType)
		e = protowire.AppendBytes(e, s.Marshal())
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, e)
	}
	return b
}

// UnmarshalStates decodes a state file of MarshalStates, or of version 1
// (a single State.Marshal): then states is nil and legacy that state.
func UnmarshalStates(data []byte) (states map[string]*State, legacy *State, err error) {
	if !bytes.HasPrefix(data, []byte(statesMagic)) {
		legacy, err = UnmarshalState(data)
		return nil, legacy, err
	}
	states = map[string]*State{}
	b := data[len(statesMagic):]
	for len(b) > 0 {
		at := len(data) - len(b)
		e, n, err := consumeBytesField(b, 1)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: states at byte %d: %w", ErrMalformed, at, err)
		}
		b = b[n:]
		name, k, err := consumeBytesField(e, 1)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: states at byte %d: name: %w", ErrMalformed, at, err)
		}
		st, _, err := consumeBytesField(e[k:], 2)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: states at byte %d: state of %s: %w", ErrMalformed, at, name, err)
		}
		if _, dup := states[string(name)]; dup {
			return nil, nil, fmt.Errorf("%w: states at byte %d: %s twice", ErrMalformed, at, name)
		}
		s, err := UnmarshalState(st)
		if err != nil {
			return nil, nil, fmt.Errorf("state of %s: %w", name, err)
		}
		states[string(name)] = s
	}
	return states, nil, nil
}

// consumeBytesField reads a field num of wire type bytes from the start
// of b, returning its content and the bytes read.
func consumeBytesField(b []byte, num protowire.Number) ([]byte, int, error) {
	got, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return nil, 0, protowire.ParseError(n)
	}
	if got != num || typ != protowire.BytesType {
		return nil, 0, fmt.Errorf("field %d of type %d, want field %d of bytes", got, typ, num)
	}
	v, m := protowire.ConsumeBytes(b[n:])
	if m < 0 {
		return nil, 0, protowire.ParseError(m)
	}
	return v, n + m, nil
}
