// Package irpkipb holds the protobuf messages of the iRPKI repository
// layout (Schulmann and Vogel, 2025, Appendix B) and their generated Go code.
//
// Regenerating needs protoc (Debian: protobuf-compiler); protoc-gen-go is
// built at the version go.mod pins.
package irpkipb

//go:generate sh -c "go build -o \"$(go env GOPATH)/bin/protoc-gen-go\" google.golang.org/protobuf/cmd/protoc-gen-go && protoc --plugin=protoc-gen-go=\"$(go env GOPATH)/bin/protoc-gen-go\" --go_out=. --go_opt=paths=source_relative irpki.proto"
