package rrdpxml

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

const (
	tSession = "9b3f7e31-4979-4f8c-9818-73e4dadc3e6b"
	tURI     = "rsync://rpki.example.net/repo/a.roa"
	tURI2    = "rsync://rpki.example.net/repo/b.roa"
	tHash    = "6f19c7760d83b12e259f35924f40be76c6a9c963db23a692ce192c2faef94271"
	tHTTPS   = "https://rrdp.example.net/s/1/snapshot.xml"
	rootAttr = ` xmlns="http://www.ripe.net/rpki/rrdp" version="1" session_id="` + tSession + `" serial="5"`
)

func snap(body string) string  { return "<snapshot" + rootAttr + ">\n" + body + "</snapshot>\n" }
func delta(body string) string { return "<delta" + rootAttr + ">\n" + body + "</delta>\n" }
func notif(body string) string {
	return "<notification" + rootAttr + ">\n" + body + "</notification>\n"
}

func pub(uri, content string) string {
	return `<publish uri="` + uri + `">` + content + "</publish>\n"
}
func pubHash(uri, hash, content string) string {
	return `<publish uri="` + uri + `" hash="` + hash + `">` + content + "</publish>\n"
}
func wd(uri, hash string) string { return `<withdraw uri="` + uri + `" hash="` + hash + `"/>` + "\n" }
func snapRef(uri string) string  { return `<snapshot uri="` + uri + `" hash="` + tHash + `"/>` + "\n" }
func deltaRef(serial, uri string) string {
	return `<delta serial="` + serial + `" uri="` + uri + `" hash="` + tHash + `"/>` + "\n"
}

// decodeAny decodes a file of any kind to its end.
func decodeAny(in []byte, lim Limits) error {
	d := NewDecoder(bytes.NewReader(in), lim)
	defer d.Close()
	h, err := d.Header()
	if err != nil {
		return err
	}
	if h.Kind == KindNotification {
		_, err := d.Notification()
		return err
	}
	for {
		if _, err := d.Next(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

type badCase struct {
	name string
	in   string
	lim  Limits
	want error
}

var lolz = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
]>
` + snap("&lol2;")

var badCases = []badCase{
	// Refused XML features.
	{"doctype", "<!DOCTYPE snapshot>\n" + snap(""), Limits{}, ErrDoctype},
	{"billion laughs", lolz, Limits{}, ErrDoctype},
	{"xxe", `<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>` + snap("&xxe;"), Limits{}, ErrDoctype},
	{"entity declaration", `<!ENTITY x "y">` + snap(""), Limits{}, ErrEntity},
	{"element declaration", `<!ELEMENT x ANY>` + snap(""), Limits{}, ErrDoctype},
	{"unknown entity in uri", snap(pub("rsync://h/a&foo;.roa", "QUJD")), Limits{}, ErrEntity},
	{"unknown entity in content", snap(pub(tURI, "QU&foo;JD")), Limits{}, ErrEntity},
	{"external entity in root", snap("&xxe;"), Limits{}, ErrText},
	{"char ref to control char", snap(pub("rsync://h/a&#10;.roa", "QUJD")), Limits{}, ErrEntity},
	{"char ref to NUL", snap(pub("rsync://h/a&#x0;.roa", "QUJD")), Limits{}, ErrEntity},
	{"char ref beyond unicode", snap(pub("rsync://h/a&#x110000;.roa", "QUJD")), Limits{}, ErrEntity},
	{"bare ampersand", snap(pub("rsync://h/a&b.roa", "QUJD")), Limits{}, ErrEntity},
	{"processing instruction", `<?xml-stylesheet href="a"?>` + snap(""), Limits{}, ErrProcInst},
	{"processing instruction in root", snap(`<?php x ?>`), Limits{}, ErrProcInst},
	{"xml declaration not first", " <?xml version=\"1.0\"?>" + snap(""), Limits{}, ErrProcInst},
	{"cdata in root", snap("<![CDATA[x]]>"), Limits{}, ErrCDATA},
	{"cdata in publish", snap(pub(tURI, "<![CDATA[QUJD]]>")), Limits{}, ErrCDATA},
	{"latin-1", `<?xml version="1.0" encoding="ISO-8859-1"?>` + snap(""), Limits{}, ErrEncoding},
	{"utf-16", `<?xml version="1.0" encoding="UTF-16"?>` + snap(""), Limits{}, ErrEncoding},
	{"utf-16 bom", "\xff\xfe<\x00", Limits{}, ErrEncoding},
	{"bad utf-8 in comment", "<!-- \xff -->" + snap(""), Limits{}, ErrEncoding},
	{"xml 1.1", `<?xml version="1.1"?>` + snap(""), Limits{}, ErrSyntax},

	// Namespaces and attributes.
	{"wrong namespace", strings.Replace(snap(""), "ripe.net", "example.com", 1), Limits{}, ErrNamespace},
	{"no namespace", strings.Replace(snap(""), ` xmlns="http://www.ripe.net/rpki/rrdp"`, "", 1), Limits{}, ErrNamespace},
	{"prefixed namespace", `<r:snapshot xmlns:r="http://www.ripe.net/rpki/rrdp" version="1" session_id="` + tSession + `" serial="5"></r:snapshot>`, Limits{}, ErrNamespace},
	{"prefix declaration", strings.Replace(snap(""), `version=`, `xmlns:r="http://www.ripe.net/rpki/rrdp" version=`, 1), Limits{}, ErrNamespace},
	{"publish in other namespace", snap(`<publish xmlns="urn:x" uri="` + tURI + `">QUJD</publish>`), Limits{}, ErrNamespace},
	{"missing serial", strings.Replace(snap(""), ` serial="5"`, "", 1), Limits{}, ErrMissingAttr},
	{"missing uri", snap("<publish>QUJD</publish>"), Limits{}, ErrMissingAttr},
	{"missing delta hash", notif(snapRef(tHTTPS) + `<delta serial="1" uri="` + tHTTPS + `"/>`), Limits{}, ErrMissingAttr},
	{"duplicate attribute", strings.Replace(snap(""), `version="1"`, `version="1" version="1"`, 1), Limits{}, ErrDuplicateAttr},
	{"duplicate uri attribute", snap(`<publish uri="` + tURI + `" uri="` + tURI + `">QUJD</publish>`), Limits{}, ErrDuplicateAttr},
	{"unknown attribute", strings.Replace(snap(""), `version="1"`, `version="1" foo="bar"`, 1), Limits{}, ErrUnknownAttr},
	{"serial on publish", snap(`<publish serial="1" uri="` + tURI + `">QUJD</publish>`), Limits{}, ErrUnknownAttr},
	{"unquoted attribute", snap(`<publish uri=` + tURI + `>QUJD</publish>`), Limits{}, ErrSyntax},
	{"lt in attribute", snap(`<publish uri="rsync://h/<a">QUJD</publish>`), Limits{}, ErrSyntax},
	{"no space between attributes", delta(`<withdraw uri="` + tURI + `"hash="` + tHash + `"/>`), Limits{}, ErrSyntax},

	// Values.
	{"version 2", strings.Replace(snap(""), `version="1"`, `version="2"`, 1), Limits{}, ErrVersion},
	{"version 01", strings.Replace(snap(""), `version="1"`, `version="01"`, 1), Limits{}, ErrVersion},
	{"bad session id", strings.Replace(snap(""), tSession, "9b3f7e31-4979-4f8c-9818-73e4dadc3e6", 1), Limits{}, ErrSessionID},
	{"session id not hex", strings.Replace(snap(""), tSession, "9b3f7e31-4979-4f8c-9818-73e4dadc3e6g", 1), Limits{}, ErrSessionID},
	{"session id without dashes", strings.Replace(snap(""), tSession, "9b3f7e3104979-4f8c-9818-73e4dadc3e6b", 1), Limits{}, ErrSessionID},
	{"serial 0", strings.Replace(snap(""), `serial="5"`, `serial="0"`, 1), Limits{}, ErrSerial},
	{"serial negative", strings.Replace(snap(""), `serial="5"`, `serial="-5"`, 1), Limits{}, ErrSerial},
	{"serial plus", strings.Replace(snap(""), `serial="5"`, `serial="+5"`, 1), Limits{}, ErrSerial},
	{"serial leading zero", strings.Replace(snap(""), `serial="5"`, `serial="05"`, 1), Limits{}, ErrSerial},
	{"serial overflow", strings.Replace(snap(""), `serial="5"`, `serial="18446744073709551616"`, 1), Limits{}, ErrSerial},
	{"serial empty", strings.Replace(snap(""), `serial="5"`, `serial=""`, 1), Limits{}, ErrSerial},
	{"delta ref serial 0", notif(snapRef(tHTTPS) + deltaRef("0", tHTTPS)), Limits{}, ErrSerial},
	{"hash 63 digits", delta(wd(tURI, tHash[:63])), Limits{}, ErrBadHash},
	{"hash 65 digits", delta(wd(tURI, tHash+"0")), Limits{}, ErrBadHash},
	{"hash not hex", delta(wd(tURI, "g"+tHash[1:])), Limits{}, ErrBadHash},
	{"withdraw without hash", delta(`<withdraw uri="` + tURI + `"/>`), Limits{}, ErrMissingHash},
	{"empty delta", delta(""), Limits{}, ErrEmptyDelta},
	{"empty delta element", "<delta" + rootAttr + "/>\n", Limits{}, ErrEmptyDelta},
	{"snapshot publish with hash", snap(pubHash(tURI, tHash, "QUJD")), Limits{}, ErrUnexpectedHash},
	{"http publish uri", snap(pub("http://rpki.example.net/a.roa", "QUJD")), Limits{}, ErrBadURI},
	{"https publish uri", snap(pub("https://rpki.example.net/a.roa", "QUJD")), Limits{}, ErrBadURI},
	{"uppercase scheme", snap(pub("RSYNC://rpki.example.net/a.roa", "QUJD")), Limits{}, ErrBadURI},
	{"rsync snapshot uri", notif(snapRef("rsync://rpki.example.net/snapshot.xml")), Limits{}, ErrBadURI},
	{"http delta uri", notif(snapRef(tHTTPS) + deltaRef("1", "http://rrdp.example.net/d.xml")), Limits{}, ErrBadURI},
	{"dotdot segment", snap(pub("rsync://h/repo/../a.roa", "QUJD")), Limits{}, ErrBadURI},
	{"dot segment", snap(pub("rsync://h/repo/./a.roa", "QUJD")), Limits{}, ErrBadURI},
	{"trailing dotdot", snap(pub("rsync://h/repo/..", "QUJD")), Limits{}, ErrBadURI},
	{"encoded dotdot", snap(pub("rsync://h/repo/%2e%2E/a.roa", "QUJD")), Limits{}, ErrBadURI},
	{"encoded slash hides dotdot", snap(pub("rsync://h/repo/..%2f..%2Fa.roa", "QUJD")), Limits{}, ErrBadURI},
	{"encoded backslash", snap(pub("rsync://h/repo/a%5cb.roa", "QUJD")), Limits{}, ErrBadURI},
	{"encoded nul", snap(pub("rsync://h/repo/a%00.roa", "QUJD")), Limits{}, ErrBadURI},
	{"control char in uri", snap(pub("rsync://h/a\x01.roa", "QUJD")), Limits{}, ErrBadURI},
	{"tab in uri", snap(pub("rsync://h/a\t.roa", "QUJD")), Limits{}, ErrBadURI},
	{"space in uri", snap(pub("rsync://h/a b.roa", "QUJD")), Limits{}, ErrBadURI},
	{"non-ascii in uri", snap(pub("rsync://h/\xc3\xa9.roa", "QUJD")), Limits{}, ErrBadURI},
	{"no host", snap(pub("rsync:///a.roa", "QUJD")), Limits{}, ErrBadURI},
	{"no path", snap(pub("rsync://h", "QUJD")), Limits{}, ErrBadURI},
	{"directory uri", snap(pub("rsync://h/repo/", "QUJD")), Limits{}, ErrBadURI},
	{"user info", snap(pub("rsync://u@h/a.roa", "QUJD")), Limits{}, ErrBadURI},
	{"bad percent", snap(pub("rsync://h/a%zz.roa", "QUJD")), Limits{}, ErrBadURI},
	{"fragment", snap(pub("rsync://h/a.roa#x", "QUJD")), Limits{}, ErrBadURI},
	{"query in rsync uri", snap(pub("rsync://h/a.roa?x", "QUJD")), Limits{}, ErrBadURI},
	{"long uri", snap(pub("rsync://h/"+strings.Repeat("a", 60)+".roa", "QUJD")), Limits{MaxURILen: 64}, ErrTooLarge},
	{"duplicate uri in snapshot", snap(pub(tURI, "QUJD") + pub(tURI2, "QUJD") + pub(tURI, "QUJD")), Limits{}, ErrDuplicateURI},
	{"duplicate uri in delta", delta(pubHash(tURI, tHash, "QUJD") + wd(tURI, tHash)), Limits{}, ErrDuplicateURI},
	{"duplicate delta serial", notif(snapRef(tHTTPS) + deltaRef("5", tHTTPS) + deltaRef("4", tHTTPS) + deltaRef("5", tHTTPS)), Limits{}, ErrDuplicateSerial},
	{"delta serial above", notif(snapRef(tHTTPS) + deltaRef("6", tHTTPS)), Limits{}, ErrDeltaSerial},
	{"no snapshot", notif(""), Limits{}, ErrNoSnapshot},
	{"empty notification", "<notification" + rootAttr + "/>", Limits{}, ErrNoSnapshot},
	{"two snapshots", notif(snapRef(tHTTPS) + snapRef(tHTTPS)), Limits{}, ErrUnexpectedElement},
	{"delta before snapshot", notif(deltaRef("5", tHTTPS) + snapRef(tHTTPS)), Limits{}, ErrUnexpectedElement},
	{"publish in notification", notif(snapRef(tHTTPS) + pub(tURI, "QUJD")), Limits{}, ErrUnexpectedElement},
	{"withdraw in snapshot", snap(wd(tURI, tHash)), Limits{}, ErrUnexpectedElement},
	{"publish as root", pub(tURI, "QUJD"), Limits{}, ErrUnexpectedElement},
	{"bad base64", snap(pub(tURI, "QU@D")), Limits{}, ErrBadBase64},
	{"bad base64 padding", snap(pub(tURI, "QUJ")), Limits{}, ErrBadBase64},
	{"base64 after padding", snap(pub(tURI, "QQ==QUJD")), Limits{}, ErrBadBase64},
	{"base64 url alphabet", snap(pub(tURI, "QU-_")), Limits{}, ErrBadBase64},
	{"base64 with spaces and junk", snap(pub(tURI, "QU JD Q*==")), Limits{}, ErrBadBase64},
	{"empty content", snap(pub(tURI, "")), Limits{RejectEmptyContent: true}, ErrEmptyContent},
	{"blank content", snap(pub(tURI, "\n  \n")), Limits{RejectEmptyContent: true}, ErrEmptyContent},
	{"self-closing publish", snap(`<publish uri="` + tURI + `"/>`), Limits{RejectEmptyContent: true}, ErrEmptyContent},

	// Limits.
	{"object over cap", snap(pub(tURI, "QUJDREVGR0hJSktMTU5PUFFS")), Limits{MaxObjectSize: 16}, ErrTooLarge},
	{"file over cap", snap(pub(tURI, "QUJD") + pub(tURI2, "QUJD")), Limits{MaxFileSize: 200}, ErrTooLarge},
	{"too many objects", snap(pub(tURI, "QUJD") + pub(tURI2, "QUJD")), Limits{MaxObjects: 1}, ErrTooLarge},
	{"too many deltas", notif(snapRef(tHTTPS) + deltaRef("5", tHTTPS) + deltaRef("4", tHTTPS)), Limits{MaxDeltas: 1}, ErrTooLarge},
	{"comment over cap", snap("<!--" + strings.Repeat("x", maxComment) + "-->"), Limits{}, ErrTooLarge},

	// Structure.
	{"trailing garbage", snap("") + "garbage", Limits{}, ErrTrailingData},
	{"second root", snap("") + snap(""), Limits{}, ErrTrailingData},
	{"unclosed root", strings.TrimSuffix(snap(pub(tURI, "QUJD")), "</snapshot>\n"), Limits{}, ErrUnexpectedEOF},
	{"truncated tag", snap("")[:40], Limits{}, ErrUnexpectedEOF},
	{"truncated content", snap(pub(tURI, "QUJD"))[:len(snap(""))+20], Limits{}, ErrUnexpectedEOF},
	{"empty input", "", Limits{}, ErrUnexpectedEOF},
	{"only whitespace", " \n", Limits{}, ErrUnexpectedEOF},
	{"mismatched end tag", snap(`<publish uri="` + tURI + `">QUJD</withdraw>`), Limits{}, ErrMismatchedTag},
	{"mismatched root end tag", strings.Replace(snap(""), "</snapshot>", "</delta>", 1), Limits{}, ErrMismatchedTag},
	{"text inside root", snap("hello"), Limits{}, ErrText},
	{"text before root", "hello" + snap(""), Limits{}, ErrText},
	{"text inside withdraw", delta(`<withdraw uri="` + tURI + `" hash="` + tHash + `">x</withdraw>`), Limits{}, ErrText},
	{"text inside snapshot ref", notif(`<snapshot uri="` + tHTTPS + `" hash="` + tHash + `">x</snapshot>`), Limits{}, ErrText},
	{"unknown element", snap("<foo/>"), Limits{}, ErrUnknownElement},
	{"unknown root", "<foo/>", Limits{}, ErrUnknownElement},
	{"element inside publish", snap(`<publish uri="` + tURI + `"><publish/></publish>`), Limits{}, ErrUnexpectedElement},
	{"comment inside publish", snap(`<publish uri="` + tURI + `">QU<!-- -->JD</publish>`), Limits{}, ErrSyntax},
	{"double dash in comment", "<!-- a -- b -->" + snap(""), Limits{}, ErrSyntax},
	{"comment ending in dash", "<!-- a --->" + snap(""), Limits{}, ErrSyntax},
	{"slash without gt", delta(`<withdraw uri="` + tURI + `" hash="` + tHash + `"/ >`), Limits{}, ErrSyntax},
}

func TestDecoderRejects(t *testing.T) {
	for _, tc := range badCases {
		t.Run(tc.name, func(t *testing.T) {
			err := decodeAny([]byte(tc.in), tc.lim)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got error %v, want %v", err, tc.want)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("got %T (%v), want *SyntaxError", err, err)
			}
			if se.Line < 1 || se.Offset < 0 || se.Offset > int64(len(tc.in)) {
				t.Errorf("got line %d, offset %d; want a place in the %d-byte input", se.Line, se.Offset, len(tc.in))
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "rrdpxml: line ") || !strings.Contains(msg, tc.want.Error()) {
				t.Errorf("got message %q, want it to start with \"rrdpxml: line \" and name %q", msg, tc.want)
			}
		})
	}
}

func TestErrorPlace(t *testing.T) {
	withdrawNoHash := `<withdraw uri="` + tURI + `"/>`
	badB64 := snap(pub(tURI, "QUJD") + pub(tURI2, "QUJD\nQU*D"))
	for _, tc := range []struct {
		name   string
		in     string
		want   error
		line   int
		offset int
		uri    string
	}{
		{"withdraw without hash", delta(pubHash(tURI2, tHash, "QUJD") + withdrawNoHash + "\n"), ErrMissingHash,
			3, len(delta("")) - len("</delta>\n") + len(pubHash(tURI2, tHash, "QUJD")), tURI},
		{"doctype", "<?xml version=\"1.0\"?>\n<!DOCTYPE x>", ErrDoctype, 2, 22, ""},
		{"bad base64 character", badB64, ErrBadBase64, 4, strings.Index(badB64, "*"), tURI2},
		{"bad uri", snap(pub("rsync://h/a b", "QUJD")), ErrBadURI, 2, len(snap("")) - len("</snapshot>\n") + len(`<publish uri="`), "rsync://h/a b"},
		{"trailing", snap("") + "\n\nx", ErrTrailingData, 5, len(snap("")) + 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := decodeAny([]byte(tc.in), Limits{})
			var se *SyntaxError
			if !errors.As(err, &se) || !errors.Is(err, tc.want) {
				t.Fatalf("got error %v, want a *SyntaxError for %v", err, tc.want)
			}
			if se.Line != tc.line || se.Offset != int64(tc.offset) || se.URI != tc.uri {
				t.Errorf("got line %d, offset %d, uri %q; want line %d, offset %d, uri %q (%v)",
					se.Line, se.Offset, se.URI, tc.line, tc.offset, tc.uri, err)
			}
		})
	}
	err := decodeAny([]byte(delta(withdrawNoHash)), Limits{})
	want := `rrdpxml: line 2, byte ` + strconv.Itoa(len(delta(""))-len("</delta>\n")) + ` (uri ` + tURI + `): withdraw without hash`
	if err == nil || err.Error() != want {
		t.Errorf("got message %v, want %q", err, want)
	}
}

func sha256Of(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// TestDecoderAccepts decodes valid variations of the syntax and checks
// the values read.
func TestDecoderAccepts(t *testing.T) {
	upper := strings.ToUpper(tHash)
	for _, tc := range []struct {
		name string
		in   string
		want []elem
	}{
		{"bom and declaration", "\xef\xbb\xbf<?xml version='1.0' encoding='utf-8' standalone=\"yes\" ?>\n" + snap(pub(tURI, "QUJD")),
			[]elem{{URI: tURI, Content: []byte("ABC")}}},
		{"ascii declaration", `<?xml version="1.0" encoding="US-ASCII"?>` + snap(pub(tURI, "QUJD")),
			[]elem{{URI: tURI, Content: []byte("ABC")}}},
		{"comments everywhere", "<!-- a -->\n<!---->" + strings.Replace(snap(pub(tURI, "QUJD")+"<!-- b -->"), "</snapshot>", "<!-- c - d --></snapshot>", 1) + "<!-- e -->\n",
			[]elem{{URI: tURI, Content: []byte("ABC")}}},
		{"crlf and tabs", strings.ReplaceAll(snap("\t"+`<publish  uri = 'rsync://h/a.roa'  >`+"\r\n\tQUJD\r\n\tREVG\r\n</publish >\r\n"), "\n", "\r\n"),
			[]elem{{URI: "rsync://h/a.roa", Content: []byte("ABCDEF")}}},
		{"spaces inside base64", snap(pub(tURI, " QU JD\tRE VG ")),
			[]elem{{URI: tURI, Content: []byte("ABCDEF")}}},
		{"references inside base64", snap(pub(tURI, "&#81;UJD")),
			[]elem{{URI: tURI, Content: []byte("ABC")}}},
		{"xmlns on children", snap(`<publish xmlns="http://www.ripe.net/rpki/rrdp" uri="` + tURI + `">QUJD</publish>`),
			[]elem{{URI: tURI, Content: []byte("ABC")}}},
		{"references in uri", snap(pub("rsync://h/a&amp;b&#x2D;&apos;c&#46;roa", "QUJD")),
			[]elem{{URI: "rsync://h/a&b-'c.roa", Content: []byte("ABC")}}},
		{"empty content by default", snap(pub(tURI, "\n  ") + `<publish uri="` + tURI2 + `"/>`),
			[]elem{{URI: tURI}, {URI: tURI2}}},
		{"delta forms", delta(pubHash(tURI, upper, "QUJD") + `<withdraw uri="` + tURI2 + `" hash="` + tHash + `"></withdraw>` +
			`<withdraw hash="` + tHash + `" uri="rsync://h/c.roa" >` + "\n </withdraw>"),
			[]elem{
				{URI: tURI, Hash: hashOf(t, tHash), HasHash: true, Content: []byte("ABC")},
				{Withdraw: true, URI: tURI2, Hash: hashOf(t, tHash), HasHash: true},
				{Withdraw: true, URI: "rsync://h/c.roa", Hash: hashOf(t, tHash), HasHash: true},
			}},
		{"empty snapshot", "<snapshot" + rootAttr + "/>", nil},
		{"uri shapes", snap(pub("rsync://h:873/a//b/.../c..d/%41.roa", "QUJD") + pub("rsync://[2001:db8::1]/x", "QUJD")),
			[]elem{{URI: "rsync://h:873/a//b/.../c..d/%41.roa", Content: []byte("ABC")}, {URI: "rsync://[2001:db8::1]/x", Content: []byte("ABC")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, els, _, err := decodeElems(strings.NewReader(tc.in), Limits{})
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if len(els) != len(tc.want) {
				t.Fatalf("got %d elements, want %d", len(els), len(tc.want))
			}
			for i, e := range els {
				w := tc.want[i]
				if e.Withdraw != w.Withdraw || e.URI != w.URI || e.Hash != w.Hash || e.HasHash != w.HasHash || !bytes.Equal(e.Content, w.Content) {
					t.Errorf("element %d: got %+v, want %+v", i, e, w)
				}
			}
		})
	}
}

func hashOf(t *testing.T, s string) [32]byte {
	h, err := parseHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHeader(t *testing.T) {
	in := strings.Replace(delta(wd(tURI, tHash)), tSession, strings.ToUpper(tSession), 1)
	d := NewDecoder(strings.NewReader(in), Limits{})
	defer d.Close()
	h, err := d.Header()
	if err != nil {
		t.Fatal(err)
	}
	want := Header{Kind: KindDelta, SessionID: tSession, Serial: 5}
	if h != want {
		t.Errorf("got header %+v, want %+v", h, want)
	}
	if h2, err := d.Header(); h2 != want || err != nil {
		t.Errorf("second Header: got %+v, %v; want %+v", h2, err, want)
	}
	if _, err := d.Notification(); !errors.Is(err, ErrKind) {
		t.Errorf("Notification on a delta: got %v, want %v", err, ErrKind)
	}
	if e, err := d.Next(); err != nil || e.URI != tURI {
		t.Fatalf("Next: got %+v, %v; want the withdraw of %s", e, err, tURI)
	}
	if _, err := d.Next(); err != io.EOF {
		t.Fatalf("Next: got %v, want io.EOF", err)
	}
	if got := d.Size(); got != int64(len(in)) {
		t.Errorf("Size: got %d, want %d", got, len(in))
	}
	if _, err := d.Next(); err != io.EOF {
		t.Errorf("Next after the end: got %v, want io.EOF", err)
	}
}

func TestNotification(t *testing.T) {
	in := "<?xml version=\"1.0\"?>\n" + notif(snapRef(tHTTPS)+deltaRef("3", "https://rrdp.example.net/d/3.xml")+
		"<!-- gap -->"+deltaRef("5", "https://rrdp.example.net/d/5.xml?v=1&amp;w=2"))
	n, sum, err := DecodeNotification(strings.NewReader(in), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	h := hashOf(t, tHash)
	want := Notification{SessionID: tSession, Serial: 5, Snapshot: SnapshotRef{URI: tHTTPS, Hash: h},
		Deltas: []DeltaRef{{Serial: 3, URI: "https://rrdp.example.net/d/3.xml", Hash: h}, {Serial: 5, URI: "https://rrdp.example.net/d/5.xml?v=1&w=2", Hash: h}}}
	if n.SessionID != want.SessionID || n.Serial != want.Serial || n.Snapshot != want.Snapshot || len(n.Deltas) != 2 ||
		n.Deltas[0] != want.Deltas[0] || n.Deltas[1] != want.Deltas[1] {
		t.Errorf("got %+v, want %+v", n, want)
	}
	if sum != sha256Of(in) {
		t.Errorf("got sum %x, want %x", sum, sha256Of(in))
	}
	d := NewDecoder(strings.NewReader(in), Limits{})
	defer d.Close()
	if _, err := d.Next(); !errors.Is(err, ErrKind) {
		t.Errorf("Next on a notification: got %v, want %v", err, ErrKind)
	}
	if _, err := d.Notification(); err != nil {
		t.Errorf("Notification after Next: %v", err)
	}
	if _, err := d.Notification(); !errors.Is(err, ErrKind) {
		t.Errorf("second Notification: got %v, want %v", err, ErrKind)
	}
}

// TestSum checks the SHA-256 and size over inputs of many sizes, across
// block boundaries.
func TestSum(t *testing.T) {
	for _, size := range []int{0, 1000, blockSize - 1, blockSize, 3*blockSize + 17, 9 * blockSize} {
		in, _ := generate(genSpec{seed: uint64(size), size: size, minObj: 10, maxObj: 3000})
		d := NewDecoder(bytes.NewReader(in), Limits{})
		for {
			if _, err := d.Next(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
		}
		if got, want := d.Sum(), sha256Of(string(in)); got != want {
			t.Errorf("size %d: got sum %x, want %x", size, got, want)
		}
		if got := d.Size(); got != int64(len(in)) {
			t.Errorf("size %d: got Size %d, want %d", size, got, len(in))
		}
		d.Close()
	}
}
