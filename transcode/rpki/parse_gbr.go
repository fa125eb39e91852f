package rpki

import (
	"errors"
	"fmt"
	"strings"
)

// checkVCard checks the eContent of a Ghostbusters record against the
// vCard profile of RFC 6493 section 5: a single vCard 4.0 with only the
// properties BEGIN, VERSION, FN, ORG, ADR, TEL, EMAIL and END, an FN, and
// at least one of ADR, TEL and EMAIL.
func checkVCard(content []byte) error {
	s := strings.ReplaceAll(string(content), "\r\n", "\n")
	s = strings.NewReplacer("\n ", "", "\n\t", "").Replace(s) // unfold
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) < 4 || !strings.EqualFold(lines[0], "BEGIN:VCARD") || !strings.EqualFold(lines[len(lines)-1], "END:VCARD") {
		return errors.New("ghostbusters: not a single vCard")
	}
	seen := map[string]int{}
	for i, line := range lines[1 : len(lines)-1] {
		end := strings.IndexAny(line, ":;")
		if end <= 0 {
			return fmt.Errorf("ghostbusters: vCard line %d: no property", i+2)
		}
		name := strings.ToUpper(line[:end])
		switch name {
		case "VERSION":
			if line[end:] != ":4.0" {
				return fmt.Errorf("ghostbusters: vCard version %q, want 4.0", line[end+1:])
			}
		case "FN", "ORG", "ADR", "TEL", "EMAIL":
		default:
			return fmt.Errorf("ghostbusters: vCard property %s is not allowed (RFC 6493 section 5)", name)
		}
		seen[name]++
	}
	switch {
	case seen["VERSION"] != 1:
		return errors.New("ghostbusters: vCard without exactly one VERSION")
	case seen["FN"] != 1:
		return errors.New("ghostbusters: vCard without exactly one FN")
	case seen["ADR"]+seen["TEL"]+seen["EMAIL"] == 0:
		return errors.New("ghostbusters: vCard without ADR, TEL or EMAIL")
	}
	return nil
}
