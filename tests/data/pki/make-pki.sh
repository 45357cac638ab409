#!/bin/sh
# tests/data/pki/make-pki.sh - (re)create quickfed's committed test PKI with the openssl CLI.
# SPDX-License-Identifier: ISC
# Used by tests/unit/test_tls.c and the integration tests; the outputs are committed, so
# run this only to change the PKI. All keys are EC P-256 and everything is valid for
# 100 years. Run from any directory; files are written next to this script.
#   ca.crt/ca.key             "quickfed test CA" (the ca_file of the tests)
#   a|b|c.crt/.key            leaves for a.example, b.example, c.example (SAN dNSName)
#   wild.crt/.key             SAN *.w.example
#   wrong.crt/.key            SAN wrong.example (a certificate for the wrong name)
#   xmpp.crt/.key             no dNSName: XmppAddr xmpp.example + SRV-ID _xmpp-server.srv.example,
#                             CN cn.xmpp.example (the CN must then be ignored)
#   cnonly.crt/.key           no SAN at all, CN cnonly.example (CN fallback)
#   other-ca.crt/.key         a second CA nobody trusts
#   foreign.crt/.key          SAN a.example, issued by other-ca (right name, untrusted)
#   self.crt/.key             self-signed, SAN self.example
#   bundle.crt                ca.crt after 40 throwaway CAs (keys discarded): a CA file the
#                             size of a small system bundle (test_tls test_ca_file_shared)
set -eu
cd "$(dirname "$0")"
DAYS=36500
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

newkey() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
	chmod 600 "$1.key"
}

# mkca NAME CN
mkca() {
	newkey "$1"
	openssl req -new -x509 -key "$1.key" -out "$1.crt" -days $DAYS -sha256 -subj "/CN=$2" \
	    -addext "basicConstraints=critical,CA:TRUE" \
	    -addext "keyUsage=critical,keyCertSign,cRLSign" \
	    -addext "subjectKeyIdentifier=hash"
}

# leaf NAME CN CA EXT-LINES (EXT-LINES may be empty: no SAN)
leaf() {
	newkey "$1"
	openssl req -new -key "$1.key" -out "$tmp/$1.csr" -subj "/CN=$2"
	{
		echo "basicConstraints=critical,CA:FALSE"
		echo "keyUsage=critical,digitalSignature"
		echo "extendedKeyUsage=serverAuth,clientAuth"
		echo "subjectKeyIdentifier=hash"
		echo "authorityKeyIdentifier=keyid"
		if [ -n "$4" ]; then printf '%s\n' "$4"; fi
	} >"$tmp/$1.ext"
	openssl x509 -req -in "$tmp/$1.csr" -CA "$3.crt" -CAkey "$3.key" -CAcreateserial \
	    -CAserial "$tmp/$3.srl" -out "$1.crt" -days $DAYS -sha256 -extfile "$tmp/$1.ext" 2>/dev/null
}

mkca ca "quickfed test CA"
mkca other-ca "quickfed other CA"
leaf a a.example ca "subjectAltName=DNS:a.example"
leaf b b.example ca "subjectAltName=DNS:b.example"
leaf c c.example ca "subjectAltName=DNS:c.example"
leaf wild "*.w.example" ca "subjectAltName=DNS:*.w.example"
leaf wrong wrong.example ca "subjectAltName=DNS:wrong.example"
leaf xmpp cn.xmpp.example ca \
    "subjectAltName=otherName:1.3.6.1.5.5.7.8.5;UTF8:xmpp.example,otherName:1.3.6.1.5.5.7.8.7;IA5:_xmpp-server.srv.example"
leaf cnonly cnonly.example ca ""
leaf foreign a.example other-ca "subjectAltName=DNS:a.example"

newkey self
openssl req -new -x509 -key self.key -out self.crt -days $DAYS -sha256 -subj "/CN=self.example" \
    -addext "subjectAltName=DNS:self.example"
bundle_make() {
	: >"$tmp/bundle"
	for i in $(seq 1 40); do
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/k" 2>/dev/null
		openssl req -new -x509 -key "$tmp/k" -days $DAYS -sha256 -subj "/CN=throwaway CA $i" \
		    -addext "basicConstraints=critical,CA:TRUE" \
		    -addext "keyUsage=critical,keyCertSign,cRLSign" >>"$tmp/bundle"
	done
	cat "$tmp/bundle" ca.crt >bundle.crt
}
bundle_make
echo "test PKI written to $(pwd)"
