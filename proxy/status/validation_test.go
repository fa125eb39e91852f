package status

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// validationFixture is fixture with a validating node in gate mode: a
// serial held, runs that changed VRPs, failing CAs (one error with markup,
// which the page must escape).
func validationFixture() *Report {
	r := fixture()
	at := r.Now.Add(-90 * time.Second)
	r.Validation = &Validation{
		Mode:     "gate",
		Rules:    []string{"hold a serial that removes more than 5% of the VRPs", "hold a serial that makes a valid CA invalid"},
		Time:     at,
		Duration: 350 * time.Millisecond,
		VRPs:     14015, ASPAs: 12, CAs: 10001, FailingCAs: 2, Problems: 3,
		Failing: []FailingCA{
			{TA: "ripe", URI: "rsync://rpki.example.net/repo/ca-2.cer", Err: "manifest rsync://rpki.example.net/repo/ca-2/ca-2.mft: file roa-1.roa: hash mismatch"},
			{TA: "ripe", URI: "rsync://rpki.example.net/repo/ca-3.cer", Err: "<b>not bold</b> & stale"},
		},
		Reused: 9999, Revalidated: 2,
		Holds: []Hold{{Repo: "ripe", Session: "9df4b597-af9e-4dca-bdda-719cce2c4e28", Serial: 4812, Since: at, Attempts: 3,
			Why: []string{"removes 7008 of 14015 VRPs (50%), more than 5%"}, Removed: 7008}},
		Runs: []ValidationRun{
			{Time: at, Duration: 410 * time.Millisecond, Serials: []string{"ripe@4812"}, Outcome: "held", VRPs: 14015, Removed: 7008,
				RemovedSample: []string{"AS64512,10.0.0.0/24,24"}, NewlyFailing: []string{"rsync://rpki.example.net/repo/ca-2.cer: hash mismatch"},
				Broke: []string{"removes 7008 of 14015 VRPs (50%), more than 5%"}},
			{Time: at.Add(-time.Hour), Duration: 6600 * time.Millisecond, Serials: []string{"ripe@4811", "arin@77"}, Outcome: "published",
				VRPs: 14015, Added: 14015, AddedSample: []string{"AS64513,10.0.1.0/24,24"}},
		},
		Held: 1,
		Compact: []CompactPublication{
			{Repo: "ripe", Session: "0f6f2b1c-5b0e-4c1e-9d51-3c8e6f1a2b7d", Serial: 211, RepoSerial: 4811, CAs: 10001, Time: at},
			{Repo: "arin", Err: "store compact serial 1: <tier down>"},
		},
	}
	return r
}

func TestValidationSection(t *testing.T) {
	var page, doc bytes.Buffer
	if err := WriteHTML(&page, validationFixture()); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&doc, validationFixture()); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Held serial", "rrdp-proxy release ripe", "removes 7008 of 14015 VRPs", "&lt;b&gt;not bold&lt;/b&gt; &amp; stale", "ripe@4811, arin@77"} {
		if !strings.Contains(page.String(), s) {
			t.Errorf("status page: no %q", s)
		}
	}
	if strings.Contains(page.String(), "<b>not bold") {
		t.Error("status page: an error's markup is not escaped")
	}
	for _, s := range []string{`"validation": {`, `"mode": "gate"`, `"attempts": 3`, `"rules_broken": [`} {
		if !strings.Contains(doc.String(), s) {
			t.Errorf("status.json: no %q", s)
		}
	}
	var plain bytes.Buffer
	if err := WriteJSON(&plain, fixture()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "validation") {
		t.Error("status.json of a node without validation has a validation key")
	}
}

// TestFleetHold: a hold of another node of the fleet (Hold.Node) names
// that node on the page and in status.json, without attempts or VRP
// counts, which only that node knows; a hold of this node has no "node".
func TestFleetHold(t *testing.T) {
	r := validationFixture()
	r.Validation.Holds = append(r.Validation.Holds, Hold{Repo: "arin", Session: "s", Serial: 78, Since: r.Now.Add(-time.Minute),
		Why: []string{"validation gate holds arin serial 78: removes 3 of 5 VRPs (60%), more than 5%"}, Node: "edge-fra-2"})
	var page, doc bytes.Buffer
	if err := WriteHTML(&page, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(&doc, r); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"<b>arin</b> serial 78<div class=\"small muted\">held by edge-fra-2</div>", "rrdp-proxy release arin", "removes 3 of 5 VRPs"} {
		if !strings.Contains(page.String(), s) {
			t.Errorf("status page: no %q", s)
		}
	}
	if got := strings.Count(doc.String(), `"node": `); got != 2 { // the report's own, and the fleet hold's
		t.Errorf("status.json: %d \"node\" keys, want 2:\n%s", got, doc.String())
	}
	if !strings.Contains(doc.String(), `"node": "edge-fra-2"`) {
		t.Error(`status.json: no "node": "edge-fra-2" in the holds`)
	}
}
