package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irpki/rrdp-proxy/transcode/irpki"
	"github.com/irpki/rrdp-proxy/transcode/rpki/repotest"
	"github.com/irpki/rrdp-proxy/transcode/rrdpxml"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenReport is a fixed report of three scenarios, for the golden files.
func goldenReport() *bandwidthReport {
	sz := func(x, xg, b, bg int64) sizes { return sizes{x, xg, b, bg, x + 7, xg + 3} }
	return &bandwidthReport{
		Command: "rrdp-proxy-bench bandwidth /data/a /data/b /data/c",
		Serials: 10,
		Model:   defaultDayModel(),
		Scenarios: []scenario{
			{Name: "paper-1ca", CAs: 2, ROAs: 10000, Objects: 10005, Serial: 1, Serials: 10,
				Notification: sz(400, 300, 200, 180), Snapshot: sz(21960723, 11000000, 16100000, 10500000),
				Churn: sz(800000, 400000, 590000, 380000), Refresh: sz(9000, 6000, 6600, 5800), Listed: 11,
				NotificationEnd: sz(2600, 900, 1900, 800)},
			{Name: "paper-10kca", CAs: 10001, ROAs: 10000, Objects: 40003, Serial: 1, Serials: 10,
				Notification: sz(400, 300, 200, 180), Snapshot: sz(75000000, 40000000, 55000000, 38000000),
				Churn: sz(1200000, 600000, 880000, 560000), Refresh: sz(60000000, 30000000, 44000000, 28000000), Listed: 11,
				NotificationEnd: sz(2600, 900, 1900, 800)},
			{Name: "large", CAs: 30002, ROAs: 300000, Objects: 390000, Serial: 1, Serials: 10,
				Notification: sz(400, 300, 200, 180), Snapshot: sz(900000000, 470000000, 660000000, 450000000),
				Churn: sz(30000000, 15000000, 22000000, 14000000), Refresh: sz(180000000, 90000000, 132000000, 85000000), Listed: 11,
				NotificationEnd: sz(2600, 900, 1900, 800)},
		},
	}
}

func TestBandwidthGolden(t *testing.T) {
	for _, f := range []struct {
		name   string
		render func(*bandwidthReport) []byte
	}{{"bandwidth.golden.md", (*bandwidthReport).markdown}, {"bandwidth.golden.svg", (*bandwidthReport).svg}} {
		t.Run(f.name, func(t *testing.T) {
			got := f.render(goldenReport())
			p := filepath.Join("testdata", f.name)
			if *updateGolden {
				if err := os.WriteFile(p, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the rendering (go test -run BandwidthGolden -update rewrites it)", p)
			}
			if again := f.render(goldenReport()); !bytes.Equal(got, again) {
				t.Errorf("%s: two renderings differ", f.name)
			}
		})
	}
}

// TestBandwidthModel checks the arithmetic of the day model on the fixed
// report.
func TestBandwidthModel(t *testing.T) {
	rep := goldenReport()
	m := rep.Model
	sc := rep.Scenarios[0]
	if got, want := sc.newRP().XML, int64(400+21960723); got != want {
		t.Errorf("new RP XML: got %d, want %d", got, want)
	}
	// refresh + 1439 * churn/10
	if got, want := m.day(sc).Bin, int64(6600+1439*59000); got != want {
		t.Errorf("day .bin: got %d, want %d", got, want)
	}
	if got, want := m.link(sc).BinGz, int64(1440*800)+m.day(sc).BinGz; got != want {
		t.Errorf("link .bin+gzip: got %d, want %d", got, want)
	}
	x, _ := m.served(sc)
	day := m.day(sc)
	want := int64(20*float64(sc.newRP().EdgeXML) + 980*float64(144*sc.NotificationEnd.EdgeXML+day.EdgeXML) + 0.5)
	if x != want {
		t.Errorf("served XML: got %d, want %d", x, want)
	}
}

// gzipOf compresses b as the report does.
func gzipOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzipLevel)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestBenchBandwidthSmall runs the command on a generated small repository
// twice and checks the report against the files themselves.
func TestBenchBandwidthSmall(t *testing.T) {
	keys := t.TempDir()
	repoDir := filepath.Join(t.TempDir(), "small")
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	repo, err := repotest.Create(repoDir, repotest.Config{Profile: mustProfile(t, "small"), Seed: 5, BaseURL: "https://localhost:3000/"}, now, repotest.Options{KeyCache: keys})
	if err != nil {
		t.Fatal(err)
	}
	in := repo.Info()
	before := treeDigest(t, repoDir)

	out := t.TempDir()
	var runs [2]map[string][]byte
	for i := range runs {
		code, _, errOut := runCLI(t, "bandwidth", "--out", out, "--key-cache", keys, "--now", "2026-11-01T13:00:00Z", "--serials", "3", "--quiet", repoDir)
		if code != 0 {
			t.Fatalf("bench bandwidth: exit %d: %s", code, errOut)
		}
		runs[i] = map[string][]byte{}
		for _, f := range []string{"bandwidth.md", "bandwidth.svg", "bandwidth.json"} {
			b, err := os.ReadFile(filepath.Join(out, f))
			if err != nil {
				t.Fatal(err)
			}
			runs[i][f] = b
		}
	}
	if after := treeDigest(t, repoDir); after != before {
		t.Errorf("bench bandwidth changed REPO_DIR")
	}
	for f, b := range runs[0] {
		if !bytes.Equal(b, runs[1][f]) {
			t.Errorf("%s: two runs differ", f)
		}
	}
	js := runs[0]["bandwidth.json"]
	var rep bandwidthReport
	if err := json.Unmarshal(js, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Scenarios) != 1 {
		t.Fatalf("got %d scenarios, want 1", len(rep.Scenarios))
	}
	sc := rep.Scenarios[0]
	if sc.Name != "small" || sc.Serials != 3 || sc.Objects != in.Objects || sc.CAs != in.CAs || sc.ROAs != in.ROAs {
		t.Errorf("scenario: got %+v, want small with 3 serials and %+v", sc, in)
	}

	// The snapshot and notification sizes are those of the files.
	snap, err := os.ReadFile(filepath.Join(repoDir, filepath.FromSlash(in.Snapshot.Path)))
	if err != nil {
		t.Fatal(err)
	}
	var bin bytes.Buffer
	res, err := irpki.XMLToBin(&bin, bytes.NewReader(snap), irpki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var edge bytes.Buffer
	if _, err := irpki.BinToXML(&edge, bytes.NewReader(bin.Bytes()), irpki.Options{Session: irpki.DerivedSession(res.Session)}); err != nil {
		t.Fatal(err)
	}
	want := sizes{
		XML: in.Snapshot.Size, XMLGz: int64(len(gzipOf(t, snap))),
		Bin: int64(bin.Len()), BinGz: int64(len(gzipOf(t, bin.Bytes()))),
		EdgeXML: int64(edge.Len()), EdgeXMLGz: int64(len(gzipOf(t, edge.Bytes()))),
	}
	if int64(len(snap)) != in.Snapshot.Size || sc.Snapshot != want {
		t.Errorf("snapshot: got %+v, want %+v", sc.Snapshot, want)
	}
	notif, err := os.ReadFile(filepath.Join(repoDir, filepath.FromSlash(repotest.NotificationPath)))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Notification.XML != int64(len(notif)) || sc.Notification.XMLGz != int64(len(gzipOf(t, notif))) {
		t.Errorf("notification: got %+v, want XML %d", sc.Notification, len(notif))
	}
	base := in.BaseURL + path.Dir(repotest.NotificationPath) + "/"
	nbin, err := irpki.MarshalNotification(irpki.MapNotification(mustNotification(t, notif), base, irpki.FormatBin, irpki.Sums{Snapshot: res.OutSum}))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Notification.Bin != int64(len(nbin)) {
		t.Errorf("notification.bin: got %d bytes, want %d", sc.Notification.Bin, len(nbin))
	}
	if sc.Churn.XML <= 0 || sc.Refresh.XML <= 0 || sc.Listed != 4 || sc.NotificationEnd.XML <= sc.Notification.XML {
		t.Errorf("deltas: got churn %+v, refresh %+v, %d listed, end notification %+v", sc.Churn, sc.Refresh, sc.Listed, sc.NotificationEnd)
	}
	if !bytes.Equal(runs[0]["bandwidth.md"], rep.markdown()) {
		t.Errorf("bandwidth.md is not the rendering of bandwidth.json")
	}
}

func mustProfile(t *testing.T, name string) repotest.Profile {
	t.Helper()
	p, err := repotest.LookupProfile(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// treeDigest lists every file of dir with its size and content.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		data, err := io.ReadAll(f)
		b.WriteString(p + "\n" + string(data) + "\n")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func mustNotification(t *testing.T, b []byte) *rrdpxml.Notification {
	t.Helper()
	n, _, err := rrdpxml.DecodeNotification(bytes.NewReader(b), rrdpxml.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBenchBandwidthFrom re-renders a report with another model and checks
// that only the model changed.
func TestBenchBandwidthFrom(t *testing.T) {
	dir := t.TempDir()
	if err := writeBandwidth(dir, goldenReport(), io.Discard); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	code, _, errOut := runCLI(t, "bandwidth", "--from", filepath.Join(dir, "bandwidth.json"), "--rps", "10", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	js, err := os.ReadFile(filepath.Join(out, "bandwidth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got bandwidthReport
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatal(err)
	}
	want := goldenReport()
	want.Model.RPs = 10
	if !bytes.Equal(got.markdown(), want.markdown()) || got.Model != want.Model {
		t.Errorf("got model %+v, want %+v and the same measurements", got.Model, want.Model)
	}
	for _, args := range [][]string{{}, {"nope"}, {"bandwidth", "--new-rps", "2", "x"}, {"decode"}, {"decode", "--count", "0", "x"}} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("%q: got exit %d, want 2", args, code)
		}
	}
}

// TestBenchWritesNowhereUnlessTold renders a report without --out in an
// empty working directory: the report is printed and no file appears.
func TestBenchWritesNowhereUnlessTold(t *testing.T) {
	src := t.TempDir()
	if err := writeBandwidth(src, goldenReport(), io.Discard); err != nil {
		t.Fatal(err)
	}
	cwd := t.TempDir()
	t.Chdir(cwd)
	code, stdout, errOut := runCLI(t, "bandwidth", "--from", filepath.Join(src, "bandwidth.json"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if stdout != string(goldenReport().markdown()) {
		t.Errorf("stdout is not the report:\n%s", stdout)
	}
	if ents, err := os.ReadDir(cwd); err != nil || len(ents) != 0 {
		t.Errorf("the working directory holds %v (%v), want nothing", ents, err)
	}
}

// TestBenchCompactSmall runs the compact benchmark on a generated small
// repository: the compact bytes, with certificates and lean, must be below
// the XML's for both the new relying party and the day of deltas, and lean
// below the variant with certificates for the new relying party.
func TestBenchCompactSmall(t *testing.T) {
	keys := t.TempDir()
	repoDir := filepath.Join(t.TempDir(), "small")
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	if _, err := repotest.Create(repoDir, repotest.Config{Profile: mustProfile(t, "small"), Seed: 5, BaseURL: "https://localhost:3000/"}, now, repotest.Options{KeyCache: keys}); err != nil {
		t.Fatal(err)
	}
	before := treeDigest(t, repoDir)
	r, err := benchCompactDir(repoDir, "", now.Add(time.Hour), 2, 1440, false, repotest.Options{KeyCache: keys}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if after := treeDigest(t, repoDir); after != before {
		t.Errorf("bench compact changed REPO_DIR")
	}
	if len(r.variants) != 2 || r.variants[0].lean || !r.variants[1].lean {
		t.Fatalf("got variants %+v, want with certificates, then lean", r.variants)
	}
	for _, c := range r.variants {
		if c.bootCompact <= 0 || c.bootCompact >= r.boot.XML || c.dayCompact <= 0 || c.dayCompact >= r.day.XML {
			t.Errorf("%s: got new RP %d bytes compact against %d XML, day %d against %d; want compact smaller", c.label(), c.bootCompact, r.boot.XML, c.dayCompact, r.day.XML)
		}
		if c.certs <= 0 || c.certs >= c.bootCompact {
			t.Errorf("%s: got %d bytes of certificates in a %d-byte snapshot", c.label(), c.certs, c.bootCompact)
		}
	}
	if certs, lean := r.variants[0], r.variants[1]; lean.bootCompact >= certs.bootCompact || lean.certs >= certs.certs {
		t.Errorf("lean: %d bytes, %d of certificates; with certificates %d, %d: want lean smaller", lean.bootCompact, lean.certs, certs.bootCompact, certs.certs)
	}
}
