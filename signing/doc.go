// Package signing produces signatures and authentication tokens with token
// keys for the agent's sign and authenticate requests (docs/signing.md).
//
// Sign picks one certificate among the candidates a Store lists (by a
// certificate filter, a key id, or both), asks the local user for the PIN
// through a Prompter, and signs data or a digest with the certificate's
// key. Authenticate signs hash(origin) || hash(nonce), so that a token made
// for one site is worthless to another, and packs the result in a JSON
// authentication token; Verify checks one for a portal.
//
// The package is pure: it reaches tokens only through the Store interface
// (package signing/p11store adapts PKCS#11) and never sees a PIN that did not
// come from its Prompter.
package signing
