package main

import (
	"bytes"
	"fmt"
	"math"
	"strings"
)

// formatColors are the bar colours of the four formats, in the order of
// formats: XML dark blue, XML+gzip light blue, .bin dark orange, .bin+gzip
// light orange.
var formatColors = []string{"#2f5f8a", "#8fb8de", "#d9711c", "#f6c28b"}

var svgEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")

// svgPanel is one chart: a group of four bars per scenario.
type svgPanel struct {
	title, subtitle string
	groups          []svgGroup
}

type svgGroup struct {
	name, note string
	bytes      [4]int64
}

// shortBytes is humanBytes with fewer digits, for bar labels.
func shortBytes(n int64) string { return decimalBytes(n, 0) }

// svg draws the report's chart: three panels (new relying party, day of
// deltas, core→edge link), in each a group per scenario with a bar per
// format, the bar's height relative to the group's XML bar and its label
// the bytes. The output depends on nothing but the report.
func (r *bandwidthReport) svg() []byte {
	m := r.Model
	panels := []svgPanel{
		{title: "A new relying party", subtitle: "notification + snapshot"},
		{title: "A day of deltas", subtitle: fmt.Sprintf("%d serials", m.SerialsPerDay)},
		{title: "Core → edge link, a day", subtitle: fmt.Sprintf("%d polls + a day of deltas", m.EdgePolls)},
	}
	for _, sc := range r.Scenarios {
		var g [3]svgGroup
		for i, s := range []sizes{sc.newRP(), m.day(sc), m.link(sc)} {
			g[i] = svgGroup{name: sc.Name, bytes: [4]int64{s.XML, s.XMLGz, s.Bin, s.BinGz}}
		}
		x, _ := m.served(sc)
		g[2].note = "serves " + shortBytes(x)
		for i := range panels {
			panels[i].groups = append(panels[i].groups, g[i])
		}
	}

	const (
		width   = 1000
		height  = 640
		top     = 130 // top of the plot area
		plotH   = 420
		headFor = 60 // room above the highest bar for its label
		left    = 60
		panelW  = 310
		barW    = 17
		barGap  = 3
		groupIn = 14 // space between groups
	)
	maxPct := 100.0
	for _, p := range panels {
		for _, g := range p.groups {
			for _, v := range g.bytes {
				if g.bytes[0] > 0 {
					maxPct = max(maxPct, 100*float64(v)/float64(g.bytes[0]))
				}
			}
		}
	}
	maxPct = math.Ceil(maxPct/25) * 25
	y := func(p float64) float64 { return top + plotH - (plotH-headFor)*p/maxPct }

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Arial, sans-serif">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="30" font-size="20" font-weight="bold" text-anchor="middle">Bytes by format: RRDP XML against the iRPKI .bin</text>`+"\n", width/2)
	fmt.Fprintf(&b, `<text x="%d" y="52" font-size="13" text-anchor="middle" fill="#444">bar height: share of the group's XML bar; label: bytes (1 MB = 10⁶ B); gzip level %d</text>`+"\n", width/2, gzipLevel)
	// legend
	lx := width/2 - 4*130/2 + 20
	for i, f := range formats {
		x := lx + i*130
		fmt.Fprintf(&b, `<rect x="%d" y="68" width="14" height="14" fill="%s" stroke="#333" stroke-width="0.5"/>`, x, formatColors[i])
		fmt.Fprintf(&b, `<text x="%d" y="80" font-size="13">%s</text>`+"\n", x+20, svgEscaper.Replace(f))
	}
	// y axis: one scale for all panels
	for p := 0.0; p <= maxPct; p += 25 {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`, left, left+3*panelW-20, y(p), y(p))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="11" text-anchor="end" fill="#555">%.0f%%</text>`+"\n", left-6, y(p)+4, p)
	}
	fmt.Fprintf(&b, `<text x="16" y="%d" font-size="12" fill="#555" transform="rotate(-90 16 %d)" text-anchor="middle">share of XML</text>`+"\n", top+plotH/2, top+plotH/2)

	for pi, p := range panels {
		px := left + pi*panelW
		n := len(p.groups)
		groupW := 4*barW + 3*barGap
		inner := panelW - 20
		slack := inner - n*groupW
		gap := groupIn
		if n > 0 {
			gap = max(groupIn, slack/(n+1))
		}
		cx := px + (inner)/2
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="15" font-weight="bold" text-anchor="middle">%s</text>`+"\n", cx, top-22, svgEscaper.Replace(p.title))
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" text-anchor="middle" fill="#444">%s</text>`+"\n", cx, top-5, svgEscaper.Replace(p.subtitle))
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>`+"\n", px, px+inner, top+plotH, top+plotH)
		gx := px + (inner-n*groupW-(n-1)*gap)/2
		for _, g := range p.groups {
			for i, v := range g.bytes {
				share := 0.0
				if g.bytes[0] > 0 {
					share = 100 * float64(v) / float64(g.bytes[0])
				}
				x := gx + i*(barW+barGap)
				yt := y(share)
				fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s" stroke="#333" stroke-width="0.5"><title>%s %s: %d bytes (%.1f%% of XML)</title></rect>`+"\n",
					x, yt, barW, float64(top+plotH)-yt, formatColors[i], svgEscaper.Replace(g.name), svgEscaper.Replace(formats[i]), v, share)
				lxx, lyy := float64(x)+float64(barW)/2+4, yt-4
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n", lxx, lyy, lxx, lyy, shortBytes(v))
			}
			mid := gx + groupW/2
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="13" text-anchor="middle">%s</text>`+"\n", mid, top+plotH+18, svgEscaper.Replace(g.name))
			if g.note != "" {
				fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" text-anchor="middle" fill="#444">%s</text>`+"\n", mid, top+plotH+33, svgEscaper.Replace(g.note))
			}
			gx += groupW + gap
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" text-anchor="middle" fill="#444">serves: the XML the edge sends its %d relying parties in the day (%.0f%% new, %d notification polls each)</text>`+"\n",
		width/2, height-30, m.RPs, 100*m.NewRPs, m.RPPolls)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="middle" fill="#666">made by rrdp-proxy-bench bandwidth; exact bytes in bandwidth.json</text>`+"\n", width/2, height-12)
	b.WriteString("</svg>\n")
	return b.Bytes()
}
