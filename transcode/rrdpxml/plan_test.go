package rrdpxml

import "testing"

func TestDeltasFrom(t *testing.T) {
	n := &Notification{SessionID: "s", Serial: 5, Deltas: []DeltaRef{{Serial: 5}, {Serial: 3}, {Serial: 4}}}
	for _, tc := range []struct {
		name    string
		session string
		serial  uint64
		want    []uint64
		ok      bool
	}{
		{"chain", "s", 2, []uint64{3, 4, 5}, true},
		{"at the serial", "s", 5, nil, true},
		{"gap", "s", 1, nil, false},
		{"ahead", "s", 6, nil, false},
		{"other session", "t", 4, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds, ok := n.DeltasFrom(tc.session, tc.serial)
			var got []uint64
			for _, d := range ds {
				got = append(got, d.Serial)
			}
			if ok != tc.ok || len(got) != len(tc.want) {
				t.Fatalf("got %v %v, want %v %v", got, ok, tc.want, tc.ok)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}
