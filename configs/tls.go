package configs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
)

// TLS is the client side of a TLS connection, as sources write it:
//
//	tls: { ca_file: /etc/ssl/ca.pem, cert_file: ..., key_file: ..., server_name: ..., insecure_skip_verify: false }
//
// Files are read when the connection is first made (Client), not at load, so `validate`
// touches nothing and a rotated certificate is picked up by the next connection.
type TLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// CheckConfig implements Checker.
func (t *TLS) CheckConfig(c *Check) {
	if (t.CertFile == "") != (t.KeyFile == "") {
		c.Errorf("", "cert_file and key_file go together (a client certificate needs its key)")
	}
}

// IsZero reports whether nothing was set, i.e. the server's certificate is checked against
// the system roots and no client certificate is sent.
func (t TLS) IsZero() bool { return t == TLS{} }

// Client returns the crypto/tls configuration, reading the CA and key pair files.
func (t TLS) Client() (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // explicitly asked for in the config
	}
	if t.CAFile != "" {
		pem, err := ReadFile(t.CAFile, MaxConfigFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca_file %s: no PEM certificate in it", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls cert_file/key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
