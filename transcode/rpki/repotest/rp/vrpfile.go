package rp

import (
	"fmt"
	"os"

	"github.com/irpki/rrdp-proxy/transcode/rpki"
)

// ReadVRPCSV reads a VRP CSV file in any of the formats rpki.ParseVRPCSV
// knows: the generator's expected-vrps.csv, rpki-client's and FORT's.
func ReadVRPCSV(path string) ([]rpki.VRP, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read vrp csv: %w", err)
	}
	vrps, err := rpki.ParseVRPCSV(data)
	if err != nil {
		return nil, fmt.Errorf("read vrp csv %s: %w", path, err)
	}
	return vrps, nil
}
