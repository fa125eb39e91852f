package repotest

import (
	"fmt"
	"slices"
	"strings"
)

// Profile is the shape of a repository: a trust anchor, Intermediates CAs
// below it, and Members CAs below those (below the TA when Intermediates is
// 0). Members hold the ROAs and ASPAs.
type Profile struct {
	// Name names the profile for humans; it is stored in the state.
	Name string `json:"name"`
	// Intermediates is the number of CAs between the TA and the members;
	// they hold all resources and only issue member certificates.
	Intermediates int `json:"intermediates"`
	// Members is the number of member CAs, spread round robin over the
	// intermediates.
	Members int `json:"members"`
	// ROAs is the number of ROAs, at least one per member.
	ROAs int `json:"roas"`
	// Skew spreads the ROAs over the members like a power law with this
	// exponent (about 1 looks like RIPE's); 0 spreads them evenly.
	Skew float64 `json:"skew"`
	// ASPAs is the number of members that publish an ASPA.
	ASPAs int `json:"aspas"`
	// EEKeys is the size of the pool of keys shared by the EE
	// certificates of signed objects. Zero means 16.
	EEKeys int `json:"ee_keys"`
}

// profiles are the built-in profiles, by name.
var profiles = []Profile{
	{Name: "small", Intermediates: 2, Members: 5, ROAs: 50, Skew: 1, ASPAs: 2, EEKeys: 4},
	{Name: "paper-1ca", Members: 1, ROAs: 10000, EEKeys: 16},
	{Name: "paper-10kca", Members: 10000, ROAs: 10000, EEKeys: 16},
	{Name: "large", Intermediates: 1, Members: 30000, ROAs: 300000, Skew: 1, ASPAs: 100, EEKeys: 64},
}

// LookupProfile returns the built-in profile called name: "small" (two
// intermediate CAs, five members, 50 ROAs, two ASPAs), "paper-1ca" (one CA
// with 10,000 ROAs), "paper-10kca" (10,000 CAs with one ROA each) or
// "large" (30,000 CAs and 300,000 ROAs, like RIPE NCC's repository).
func LookupProfile(name string) (Profile, error) {
	for _, p := range profiles {
		if p.Name == name {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("unknown profile %q (want one of %s)", name, strings.Join(ProfileNames(), ", "))
}

// ProfileNames returns the names of the built-in profiles.
func ProfileNames() []string {
	var names []string
	for _, p := range profiles {
		names = append(names, p.Name)
	}
	return slices.Clip(names)
}

func (p Profile) check() error {
	switch {
	case p.Members < 1:
		return fmt.Errorf("profile %q: %d members, want at least 1", p.Name, p.Members)
	case p.Intermediates < 0:
		return fmt.Errorf("profile %q: %d intermediates, want at least 0", p.Name, p.Intermediates)
	case p.ROAs < p.Members:
		return fmt.Errorf("profile %q: %d ROAs for %d members, want at least one each", p.Name, p.ROAs, p.Members)
	case p.ASPAs < 0 || p.ASPAs > p.Members:
		return fmt.Errorf("profile %q: %d ASPAs for %d members", p.Name, p.ASPAs, p.Members)
	case p.EEKeys < 0:
		return fmt.Errorf("profile %q: %d EE keys", p.Name, p.EEKeys)
	case p.Skew < 0:
		return fmt.Errorf("profile %q: negative skew", p.Name)
	}
	return nil
}

func (p Profile) eeKeys() int {
	if p.EEKeys == 0 {
		return 16
	}
	return p.EEKeys
}
