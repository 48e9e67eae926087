// certcheck: reads an AutoMTLS certificate made by the C side (cert.pem,
// key.pem, field.txt in a directory) and checks it with Go's crypto/x509,
// the parser go-plugin itself uses. Exits 1 with one line per mismatch.
//
//	GO111MODULE=off go run certcheck.go DIR [expired]
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"time"
)

var failed int

func check(ok bool, format string, args ...interface{}) {
	if !ok {
		failed++
		fmt.Printf("FAIL: "+format+"\n", args...)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		fmt.Println("FAIL:", err)
		os.Exit(1)
	}
	return b
}

func main() {
	dir := os.Args[1]
	expired := len(os.Args) > 2 && os.Args[2] == "expired"
	certPEM := must(ioutil.ReadFile(filepath.Join(dir, "cert.pem")))
	keyPEM := must(ioutil.ReadFile(filepath.Join(dir, "key.pem")))
	field := must(ioutil.ReadFile(filepath.Join(dir, "field.txt")))

	block, rest := pem.Decode(certPEM)
	if block == nil {
		fmt.Println("FAIL: cert.pem holds no PEM block")
		os.Exit(1)
	}
	check(block.Type == "CERTIFICATE", "PEM type %q", block.Type)
	check(len(bytes.TrimSpace(rest)) == 0, "data after the PEM block")
	// Go's own encoder must give the same text (64 columns, same armour).
	check(bytes.Equal(pem.EncodeToMemory(block), certPEM), "PEM text differs from Go's pem.Encode")

	// The field is what go-plugin's host decodes (client.go loadServerCert).
	der, err := base64.RawStdEncoding.DecodeString(string(field))
	check(err == nil, "field: %v", err)
	check(bytes.Equal(der, block.Bytes), "field DER differs from the PEM's DER")
	check(len(field) > 50, "field too short for go-plugin (%d)", len(field))

	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		fmt.Println("FAIL: x509.ParseCertificate:", err)
		os.Exit(1)
	}
	check(c.Version == 3, "version %d", c.Version)
	check(c.SignatureAlgorithm == x509.ECDSAWithSHA512, "signature algorithm %v", c.SignatureAlgorithm)
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	check(ok && pub.Curve == elliptic.P521(), "public key is not ECDSA P-521")
	check(c.SerialNumber.Sign() > 0 && c.SerialNumber.BitLen() <= 128, "serial %v", c.SerialNumber)

	check(c.Subject.CommonName == "localhost", "subject CN %q", c.Subject.CommonName)
	check(len(c.Subject.Organization) == 1 && c.Subject.Organization[0] == "HashiCorp", "subject O %v", c.Subject.Organization)
	check(bytes.Equal(c.RawSubject, c.RawIssuer), "issuer differs from subject")
	want, _ := asn1.Marshal(pkix.Name{CommonName: "localhost", Organization: []string{"HashiCorp"}}.ToRDNSequence())
	check(bytes.Equal(c.RawSubject, want), "subject bytes differ from Go's encoding")

	check(len(c.DNSNames) == 1 && c.DNSNames[0] == "localhost", "DNS names %v", c.DNSNames)
	check(len(c.IPAddresses)+len(c.EmailAddresses)+len(c.URIs) == 0, "extra SAN entries")
	check(len(c.ExtKeyUsage) == 2 && c.ExtKeyUsage[0] == x509.ExtKeyUsageClientAuth &&
		c.ExtKeyUsage[1] == x509.ExtKeyUsageServerAuth, "ext key usage %v", c.ExtKeyUsage)
	ku := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement | x509.KeyUsageCertSign
	check(c.KeyUsage == ku, "key usage %b, want %b", c.KeyUsage, ku)
	check(c.BasicConstraintsValid && c.IsCA, "not a CA")
	check(c.MaxPathLen == -1, "max path len %d", c.MaxPathLen)
	check(len(c.SubjectKeyId) > 0, "no subject key id")
	check(len(c.AuthorityKeyId) == 0, "authority key id present (Go omits it when self-signed)")

	critical := map[string]bool{}
	for _, e := range c.Extensions {
		critical[e.Id.String()] = e.Critical
	}
	check(critical["2.5.29.19"], "basic constraints not critical")
	check(critical["2.5.29.15"], "key usage not critical")
	_, hasSAN := critical["2.5.29.17"]
	check(hasSAN && !critical["2.5.29.17"], "SAN missing or critical")
	check(len(c.Extensions) == 5, "%d extensions, want 5", len(c.Extensions))

	if !expired {
		life := c.NotAfter.Sub(c.NotBefore)
		check(life == 262980*time.Hour+30*time.Second, "lifetime %v", life)
		age := time.Since(c.NotBefore)
		check(age >= 30*time.Second && age < 10*time.Minute, "NotBefore %v is not ~30 s ago", c.NotBefore)
	}

	check(c.CheckSignatureFrom(c) == nil, "self-signature does not verify: %v", c.CheckSignatureFrom(c))
	roots := x509.NewCertPool()
	roots.AddCert(c)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		_, err := c.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}})
		if expired {
			check(err != nil, "expired certificate verified")
		} else {
			check(err == nil, "verify for %v: %v", usage, err)
		}
	}

	kb, _ := pem.Decode(keyPEM)
	check(kb != nil && kb.Type == "EC PRIVATE KEY", "key PEM type")
	if kb != nil {
		_, err := x509.ParseECPrivateKey(kb.Bytes)
		check(err == nil, "ParseECPrivateKey: %v", err)
	}
	_, err = tls.X509KeyPair(certPEM, keyPEM)
	check(err == nil, "tls.X509KeyPair: %v", err)

	if failed > 0 {
		fmt.Printf("certcheck: %d problems\n", failed)
		os.Exit(1)
	}
	fmt.Println("certcheck: ok")
}
