package rpki

import "encoding/asn1"

// Object identifiers used in RPKI objects.
var (
	oidSHA256            = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidRSAEncryption     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidSHA256WithRSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidCommonName        = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidSignedData        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidAttrContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidAttrMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidAttrSigningTime   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}

	oidExtSubjectKeyID     = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidExtKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidExtCRLNumber        = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidExtCRLDistPoints    = asn1.ObjectIdentifier{2, 5, 29, 31}
	oidExtCertPolicies     = asn1.ObjectIdentifier{2, 5, 29, 32}
	oidExtAuthorityKeyID   = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidExtAuthorityInfo    = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}
	oidExtSubjectInfo      = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 11}

	oidADCAIssuers    = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 2}
	oidADCARepository = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 5}
	oidADManifest     = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 10}
	oidADSignedObject = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 11}
	oidADNotify       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 13}

	oidPolicyRPKI = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 14, 2}
)

// Extension OIDs of RFC 3779.
var (
	OIDIPAddrBlocks  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 7}
	OIDASIdentifiers = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 8}
)

// Content types (eContentType) of the RPKI signed objects.
var (
	OIDContentROA      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 24}
	OIDContentManifest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 26}
	OIDContentASPA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 49}
)
