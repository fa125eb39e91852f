package rrdpxml

// This file exports the decoder's value rules for the other codecs of the
// project (the .bin reader of package irpki applies exactly the same ones).

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits { return l.withDefaults() }

// ValidSessionID reports whether s is a session id in canonical form: a
// UUID in 8-4-4-4-12 lowercase hex, as the decoder hands them out.
func ValidSessionID(s string) bool {
	c, err := parseSessionID(s)
	return err == nil && c == s
}

// CheckObjectURI checks the URI of a published or withdrawn object with the
// decoder's rules: an rsync URI of at most maxLen bytes (0: the default),
// well formed, without "." or ".." segments or control characters.
func CheckObjectURI(uri string, maxLen int) error {
	return checkURI(uri, false, Limits{MaxURILen: maxLen}.withDefaults().MaxURILen)
}

// CheckFileURI checks the URI of a snapshot or delta named by a
// notification: the same rules as CheckObjectURI, for an https URI.
func CheckFileURI(uri string, maxLen int) error {
	return checkURI(uri, true, Limits{MaxURILen: maxLen}.withDefaults().MaxURILen)
}

// URISet finds duplicate URIs in bounded memory, as the decoder does within
// one file: 16 bytes a URI, whatever its length. The zero value is not
// usable; call NewURISet.
type URISet struct{ s uriSet }

// NewURISet returns an empty set.
func NewURISet() *URISet { return &URISet{s: newURISet()} }

// Add adds uri and reports whether it was new.
func (s *URISet) Add(uri string) bool { return s.s.addString(uri) }

// CheckFileURI is the package function CheckFileURI under l: it also
// accepts an http:// URI when l.AllowHTTP is set.
func (l Limits) CheckFileURI(uri string) error {
	return checkFileURI(uri, l.withDefaults())
}

// checkFileURI checks the URI of a snapshot or delta under lim (with its
// defaults): https, or http when lim.AllowHTTP.
func checkFileURI[T text](u T, lim Limits) error {
	if lim.AllowHTTP && len(u) > len("http://") && string(u[:len("http://")]) == "http://" {
		// The rules of an https URI, the scheme aside.
		return checkURI("https://"+string(u[len("http://"):]), true, lim.MaxURILen+1)
	}
	return checkURI(u, true, lim.MaxURILen)
}
