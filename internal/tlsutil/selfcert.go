package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// SelfCertValidity is how long a certificate SelfCert makes is valid.
const SelfCertValidity = 365 * 24 * time.Hour

// SelfCert is --auto-tls: it returns dir/cert.pem and dir/key.pem, a
// self-signed ECDSA P-256 certificate for hosts (IP addresses as IP SANs,
// names as DNS SANs), usable to serve and to dial. A pair already there
// that loads and is valid for another day is kept, so a member keeps its
// certificate across restarts; otherwise a new one is made (the key
// readable by its owner only, both written by rename). made tells which.
func SelfCert(dir string, hosts []string) (files Files, made bool, err error) {
	files = Files{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	if c, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile); err == nil && c.Leaf != nil &&
		time.Now().Add(24*time.Hour).Before(c.Leaf.NotAfter) {
		return files, false, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return files, false, fmt.Errorf("tlsutil: auto TLS: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return files, false, fmt.Errorf("tlsutil: auto TLS: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return files, false, fmt.Errorf("tlsutil: auto TLS: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)),
		Subject:               pkix.Name{Organization: []string{"cairn auto TLS"}, CommonName: "cairn auto TLS"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(SelfCertValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else if h != "" && !slices.Contains(tmpl.DNSNames, h) {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return files, false, fmt.Errorf("tlsutil: auto TLS: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return files, false, fmt.Errorf("tlsutil: auto TLS: %w", err)
	}
	if err := writeFile(files.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})); err != nil {
		return files, false, err
	}
	if err := writeFile(files.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		return files, false, err
	}
	return files, true, nil
}

// writeFile writes data to path through a temporary file, synced and
// renamed, readable by its owner only.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("tlsutil: auto TLS: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("tlsutil: auto TLS: %w", err)
	}
	return nil
}
