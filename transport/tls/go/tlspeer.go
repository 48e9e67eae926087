// tlspeer: a Go crypto/tls peer with go-plugin's AutoMTLS settings (spec
// §4.3, go-plugin >= 1.4.4; the client side is also what a 1.0.1 host
// does), for interop tests against the C side over a unix socket.
//
//	tlspeer server SOCK OWNDIR PEERCERT     accept one connection, echo until EOF
//	tlspeer client SOCK OWNDIR PEERCERT N   send N bytes, expect them echoed
//	tlspeer gencert DIR                     a go-plugin style AutoMTLS cert
//
// OWNDIR holds cert.pem and key.pem; OWNDIR "none" presents no certificate.
// A PEERCERT ending in ".txt" is a handshake field 6 (base64 DER).
// Prints "tlspeer: ok ..." or "tlspeer: <error>" (exit 1).
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"io/ioutil"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func fail(format string, args ...interface{}) {
	fmt.Printf("tlspeer: "+format+"\n", args...)
	os.Exit(1)
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*131 + i>>9)
	}
	return b
}

// gencert writes a certificate made the way go-plugin makes its AutoMTLS
// certificate (spec §4.1) to DIR: cert.pem, key.pem and field.txt.
func gencert(dir string) {
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		fail("%v", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		fail("%v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"HashiCorp"}},
		DNSNames:              []string{"localhost"},
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		NotBefore:             now.Add(-30 * time.Second),
		NotAfter:              now.Add(262980 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		fail("%v", err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		fail("%v", err)
	}
	files := map[string][]byte{
		"cert.pem":  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"key.pem":   pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
		"field.txt": []byte(base64.RawStdEncoding.EncodeToString(der)),
	}
	for name, data := range files {
		if err := ioutil.WriteFile(filepath.Join(dir, name), data, 0600); err != nil {
			fail("%v", err)
		}
	}
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "gencert" {
		gencert(os.Args[2])
		return
	}
	if len(os.Args) < 5 {
		fail("usage: tlspeer server|client SOCK OWNDIR PEERCERT [N]")
	}
	mode, sock, own, peer := os.Args[1], os.Args[2], os.Args[3], os.Args[4]

	peerPEM, err := ioutil.ReadFile(peer)
	if err != nil {
		fail("%v", err)
	}
	pool := x509.NewCertPool()
	if strings.HasSuffix(peer, ".txt") {
		// handshake field 6, decoded as go-plugin's host does
		der, err := base64.RawStdEncoding.DecodeString(string(peerPEM))
		if err != nil {
			fail("field 6: %v", err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			fail("field 6: %v", err)
		}
		pool.AddCert(c)
	} else if !pool.AppendCertsFromPEM(peerPEM) {
		fail("peer certificate %s does not parse", peer)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: "localhost", RootCAs: pool}
	if own != "none" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(own, "cert.pem"), filepath.Join(own, "key.pem"))
		if err != nil {
			fail("own key pair: %v", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}

	switch mode {
	case "server":
		conf.ClientAuth = tls.RequireAndVerifyClientCert
		conf.ClientCAs = pool
		l, err := net.Listen("unix", sock)
		if err != nil {
			fail("%v", err)
		}
		fmt.Println("tlspeer: listening")
		l.(*net.UnixListener).SetDeadline(time.Now().Add(20 * time.Second))
		c, err := l.Accept()
		if err != nil {
			fail("accept: %v", err)
		}
		tc := tls.Server(c, conf)
		tc.SetDeadline(time.Now().Add(20 * time.Second))
		if err := tc.Handshake(); err != nil {
			fail("server handshake: %v", err)
		}
		n, err := io.Copy(tc, tc)
		if err != nil {
			fail("echo after %d bytes: %v", n, err)
		}
		tc.Close()
		fmt.Printf("tlspeer: ok server echoed %d bytes, %s\n", n, describe(tc))
	case "client":
		n, _ := strconv.Atoi(os.Args[5])
		c, err := net.Dial("unix", sock)
		if err != nil {
			fail("%v", err)
		}
		tc := tls.Client(c, conf)
		tc.SetDeadline(time.Now().Add(20 * time.Second))
		if err := tc.Handshake(); err != nil {
			fail("client handshake: %v", err)
		}
		data := pattern(n)
		werr := make(chan error, 1)
		go func() { _, err := tc.Write(data); werr <- err }()
		got := make([]byte, n)
		if _, err := io.ReadFull(tc, got); err != nil {
			fail("reading the echo: %v", err)
		}
		if err := <-werr; err != nil {
			fail("write: %v", err)
		}
		if !bytes.Equal(got, data) {
			fail("echo differs")
		}
		tc.Close()
		fmt.Printf("tlspeer: ok client got %d bytes back, %s\n", n, describe(tc))
	default:
		fail("mode %q", mode)
	}
}

func describe(tc *tls.Conn) string {
	st := tc.ConnectionState()
	return fmt.Sprintf("version %x, suite %s", st.Version, tls.CipherSuiteName(st.CipherSuite))
}
