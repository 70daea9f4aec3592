package p11store

import "testing"

// TestTryLockToken: TryLockToken takes the lock LockToken takes, per
// module and serial, and never waits.
func TestTryLockToken(t *testing.T) {
	var s Store
	unlock := s.LockToken("/m.so", "A1")
	if _, ok := s.TryLockToken("/m.so", "A1"); ok {
		t.Fatal("TryLockToken took a token LockToken holds")
	}
	u2, ok := s.TryLockToken("/m.so", "B2")
	if !ok {
		t.Fatal("another token's lock is not free")
	}
	unlock()
	u1, ok := s.TryLockToken("/m.so", "A1")
	if !ok {
		t.Fatal("the lock is not free after unlock")
	}
	u1()
	u2()
	s.LockToken("/m.so", "A1")() // free again
}
