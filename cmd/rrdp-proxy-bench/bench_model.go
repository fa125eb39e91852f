package main

import "fmt"

// scenario is what bench bandwidth measured for one repository.
type scenario struct {
	Name string
	// CAs, ROAs and Objects describe the repository at Serial, where the
	// new relying party starts.
	CAs, ROAs, Objects int
	Serial             uint64
	Notification       sizes // notification at Serial
	Snapshot           sizes // snapshot at Serial
	Serials            int   // churn deltas measured
	Churn              sizes // the Serials churn deltas together
	Refresh            sizes // the delta 24 hours later
	Listed             int   // deltas NotificationEnd lists
	NotificationEnd    sizes // notification after the refresh delta
}

// dayModel turns the measured files into a day of traffic.
type dayModel struct {
	// SerialsPerDay is the number of serials a repository publishes a day
	// (1440: one a minute).
	SerialsPerDay int
	// RPs is the number of relying parties behind an edge node (1000).
	RPs int
	// NewRPs is the fraction of RPs that bootstrap from the snapshot in
	// the day (0.02); the others follow deltas.
	NewRPs float64
	// RPPolls is the notification fetches per RP per day (144: every ten
	// minutes).
	RPPolls int
	// EdgePolls is the notification fetches of the edge from the core per
	// day (1440: every minute).
	EdgePolls int
}

func defaultDayModel() dayModel {
	return dayModel{SerialsPerDay: 1440, RPs: 1000, NewRPs: 0.02, RPPolls: 144, EdgePolls: 1440}
}

func (m dayModel) check() error {
	switch {
	case m.SerialsPerDay < 1:
		return fmt.Errorf("--serials-per-day %d: want at least 1", m.SerialsPerDay)
	case m.RPs < 0:
		return fmt.Errorf("--rps %d: want at least 0", m.RPs)
	case m.NewRPs < 0 || m.NewRPs > 1:
		return fmt.Errorf("--new-rps %g: want a fraction from 0 to 1", m.NewRPs)
	case m.RPPolls < 0 || m.EdgePolls < 0:
		return fmt.Errorf("polls: want at least 0")
	}
	return nil
}

// bandwidthReport is the whole report: the measurements and the model.
type bandwidthReport struct {
	Command   string
	Serials   int
	Model     dayModel
	Scenarios []scenario
	// References are real snapshots measured the same way.
	References []reference `json:",omitempty"`
}

// reference is a real snapshot measured beside the generated ones.
type reference struct {
	Path     string
	Snapshot sizes
}

// newRP is what a new relying party downloads: notification and snapshot.
func (sc scenario) newRP() sizes { return sc.Notification.add(sc.Snapshot) }

// meanChurn is the mean churn delta.
func (sc scenario) meanChurn() sizes { return sc.Churn.scale(1 / float64(sc.Serials)) }

// day is a day of deltas: the refresh delta and SerialsPerDay-1 mean
// churn deltas.
func (m dayModel) day(sc scenario) sizes {
	return sc.Refresh.add(sc.Churn.scale(float64(m.SerialsPerDay-1) / float64(sc.Serials)))
}

// link is what an edge node fetches from the core in a day, in each
// format: its notification polls and the day's deltas.
func (m dayModel) link(sc scenario) sizes {
	return sc.NotificationEnd.scale(float64(m.EdgePolls)).add(m.day(sc))
}

// served is what the edge node serves in a day, as regenerated XML
// (uncompressed, and gzip for RPs that accept it): to the new RPs a
// notification and the snapshot, to the others their notification polls
// and the day's deltas.
func (m dayModel) served(sc scenario) (xml, gz int64) {
	newRPs := float64(m.RPs) * m.NewRPs
	old := float64(m.RPs) - newRPs
	boot := sc.newRP()
	follow := sc.NotificationEnd.scale(float64(m.RPPolls)).add(m.day(sc))
	f := func(b, fl int64) int64 { return int64(newRPs*float64(b) + old*float64(fl) + 0.5) }
	return f(boot.EdgeXML, follow.EdgeXML), f(boot.EdgeXMLGz, follow.EdgeXMLGz)
}
