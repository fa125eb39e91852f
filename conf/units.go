package conf

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a TOML string parsed by time.ParseDuration: "90s", "30m",
// "2h".
type Duration struct{ time.Duration }

// UnmarshalText parses s with time.ParseDuration.
func (d *Duration) UnmarshalText(s []byte) error {
	v, err := time.ParseDuration(string(s))
	if err != nil {
		return fmt.Errorf("want a duration such as \"90s\", \"30m\" or \"2h\", got %q", s)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration in its shortest form ("1m", "1h30m").
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String writes the duration in its shortest form: "1m" rather than
// "1m0s".
func (d Duration) String() string {
	s := d.Duration.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// Size is a number of bytes written with a unit: "512MiB", "4GiB",
// "16MB", "8KiB", "100B", or a bare integer of bytes.
type Size int64

var sizeUnits = []struct {
	name string
	n    int64
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"kB", 1e3}, {"B", 1},
}

var errSize = errors.New(`want a size such as "512MiB", "4GiB", "16MB" or "8KiB" (units B, KiB, MiB, GiB, KB, MB, GB)`)

// UnmarshalText parses a size with its unit.
func (z *Size) UnmarshalText(s []byte) error {
	str := strings.TrimSpace(string(s))
	unit := int64(1)
	num := str
	for _, u := range sizeUnits {
		if strings.HasSuffix(str, u.name) {
			unit, num = u.n, strings.TrimSpace(strings.TrimSuffix(str, u.name))
			break
		}
	}
	if num == "" {
		return fmt.Errorf("%w, got %q", errSize, s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(num, 64)
		if ferr != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f*float64(unit) > math.MaxInt64 {
			return fmt.Errorf("%w, got %q", errSize, s)
		}
		*z = Size(f * float64(unit))
		return nil
	}
	if n < 0 {
		return fmt.Errorf("negative size %q", s)
	}
	if n > math.MaxInt64/unit {
		return fmt.Errorf("size %q overflows", s)
	}
	*z = Size(n * unit)
	return nil
}

// MarshalText writes the size with the largest binary unit that divides
// it.
func (z Size) MarshalText() ([]byte, error) { return []byte(z.String()), nil }

// String writes the size with the largest binary unit that divides it:
// "512MiB", "1500B".
func (z Size) String() string {
	for _, u := range sizeUnits[:3] {
		if z != 0 && int64(z)%u.n == 0 {
			return strconv.FormatInt(int64(z)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(z), 10) + "B"
}
