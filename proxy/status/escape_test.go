package status

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// hostile is a Report whose every string a third party could influence
// (repository and node names come from the configuration, URLs and error
// texts partly from origins) tries to break out of its context.
func hostile() *Report {
	r := fixture()
	r.Node = `"><img src=x onerror=alert(1)>`
	r.Version = `</title><script>alert("v")</script>`
	r.Cache.Tiers = []Tier{{Name: "<script>alert('tier')</script>", Bytes: 1}}
	r.Repos[0].Name = "<script>alert('name')</script>"
	r.Repos[0].Mode = `mirror" onmouseover="alert(1)`
	r.Repos[0].Origin = "javascript:alert('origin')"
	r.Repos[0].NotificationXML = `https://x.example/"><script>alert(1)</script>`
	r.Repos[0].Session = "<b>session</b>"
	r.Repos[0].LastError = r.Now.Add(-time.Second)
	r.Repos[0].LastErr = "</div></td></tr></table><script>alert('err')</script><!--"
	r.Repos[0].Errors = map[string]uint64{"<i>kind</i>": 1}
	return r
}

func TestHTMLEscapesEverything(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHTML(&buf, hostile()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, bad := range []string{
		"<script", "<img", "<b>session", "<i>kind", "<!--", `href="javascript:`, `" onmouseover=`, "</table><",
	} {
		if strings.Contains(strings.ToLower(out), strings.ToLower(bad)) {
			t.Errorf("page contains %q unescaped", bad)
		}
	}
	for _, want := range []string{
		"&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;",
		"&lt;/div&gt;&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;script&gt;alert(&#39;err&#39;)&lt;/script&gt;&lt;!--",
		"&#34;&gt;&lt;img src=x onerror=alert(1)&gt;",
		`href="#ZgotmplZ"`, // html/template's replacement for an unsafe URL
	} {
		if !strings.Contains(out, want) {
			t.Errorf("page lacks the escaped form %q", want)
		}
	}
	// The page's own structure survives: one table, one body.
	if n := strings.Count(out, "<table>"); n != 1 {
		t.Errorf("got %d <table> tags, want 1", n)
	}
	if n := strings.Count(out, "</table>"); n != 1 {
		t.Errorf("got %d </table> tags, want 1", n)
	}
}

func TestJSONEscapesAndRoundTrips(t *testing.T) {
	r := hostile()
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsAny(buf.Bytes(), "<>") {
		t.Errorf("JSON contains a raw < or >, unsafe if embedded in HTML")
	}
	var got struct {
		Node  string `json:"node"`
		Repos []struct {
			Name      string `json:"name"`
			LastError string `json:"last_error"`
		} `json:"repos"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Node != r.Node {
		t.Errorf("node: got %q, want %q", got.Node, r.Node)
	}
	found := false
	for _, rp := range got.Repos {
		if rp.Name == r.Repos[0].Name {
			found = true
			if rp.LastError != r.Repos[0].LastErr {
				t.Errorf("last_error: got %q, want %q", rp.LastError, r.Repos[0].LastErr)
			}
		}
	}
	if !found {
		t.Errorf("repository %q lost in JSON", r.Repos[0].Name)
	}
}
