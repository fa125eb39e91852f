package proxy

import (
	"encoding/json"
	"fmt"
	"html"
	"io"

	"github.com/irpki/rrdp-proxy/proxy/status"
)

// writeHTML and writeJSON render the status page until package status
// provides status.WriteHTML and status.WriteJSON, which replace them at
// integration with the same call shape.
var (
	writeHTML = fallbackHTML
	writeJSON = fallbackJSON
)

func fallbackJSON(w io.Writer, r *status.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("status json: %w", err)
	}
	return nil
}

func fallbackHTML(w io.Writer, r *status.Report) error {
	_, err := fmt.Fprintf(w, "<!doctype html><meta charset=utf-8><title>rrdp-proxy %s</title><h1>%s</h1><p>ready: %v</p><table>\n",
		html.EscapeString(r.Node), html.EscapeString(r.Node), r.Ready)
	if err != nil {
		return fmt.Errorf("status html: %w", err)
	}
	for _, rp := range r.Repos {
		if _, err := fmt.Fprintf(w, "<tr><td>%s<td>%s<td>%d<td>%s</tr>\n", html.EscapeString(rp.Name),
			html.EscapeString(rp.Origin), rp.Serial, html.EscapeString(rp.LastErr)); err != nil {
			return fmt.Errorf("status html: %w", err)
		}
	}
	if _, err := io.WriteString(w, "</table>\n"); err != nil {
		return fmt.Errorf("status html: %w", err)
	}
	return nil
}
