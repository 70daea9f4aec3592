/*
 * pinlimit: a PKCS#11 module for p11's tests that forwards every call to
 * another module (SoftHSM2, named by $PINLIMIT_TARGET) and adds what
 * SoftHSM2 lacks: a retry counter per token for the user and SO PINs
 * ($PINLIMIT_TRIES, default 3). A wrong PIN counts down; the token flags
 * show CKF_*_PIN_COUNT_LOW / _FINAL_TRY / _LOCKED (PKCS#11 v2.40 §5.5
 * CK_TOKEN_INFO); a locked PIN answers CKR_PIN_LOCKED without asking the
 * target; C_InitPIN (the SO unblocking the user PIN) resets the user count.
 * With $PINLIMIT_REFUSE_SO_SETPIN set (read at each call), C_SetPIN in an SO
 * session answers CKR_FUNCTION_NOT_SUPPORTED, as some cards do for the PUK.
 *
 * With $PINLIMIT_PAD set to a file name (read at each call), every token has
 * a PIN pad: C_GetTokenInfo sets CKF_PROTECTED_AUTHENTICATION_PATH, and
 * C_Login with a NULL PIN (PKCS#11 v2.40 §5.6) "reads the keypad": it opens
 * that file (a FIFO blocks until the test, playing the person at the reader,
 * writes to it) and takes what it reads, up to a newline, as the PIN for the
 * target's C_Login; "CANCEL" is the reader's cancel key
 * (CKR_FUNCTION_CANCELED). The retry counter applies as for a typed PIN.
 *
 * Built by the tests with: gcc -shared -fPIC -I<miekg/pkcs11 dir> pinlimit.c -ldl
 */
#define CK_PTR *
#define NULL_PTR 0
#define CK_DEFINE_FUNCTION(returnType, name) returnType name
#define CK_DECLARE_FUNCTION(returnType, name) returnType name
#define CK_DECLARE_FUNCTION_POINTER(returnType, name) returnType (*name)
#define CK_CALLBACK_FUNCTION(returnType, name) returnType (*name)
#include "pkcs11.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static CK_FUNCTION_LIST_PTR target;
static CK_FUNCTION_LIST list;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int max_tries = 3;

/* Per-token counters, keyed by serial number (slot IDs change). */
struct counter {
	CK_CHAR serial[16];
	int user, so; /* tries left */
};
static struct counter counters[64];
static int ncounters;

static struct counter *counter_for_slot(CK_SLOT_ID slot)
{
	CK_TOKEN_INFO ti;
	int i;
	if (target->C_GetTokenInfo(slot, &ti) != CKR_OK)
		return NULL;
	for (i = 0; i < ncounters; i++)
		if (memcmp(counters[i].serial, ti.serialNumber, 16) == 0)
			return &counters[i];
	if (ncounters == 64)
		return NULL;
	memcpy(counters[ncounters].serial, ti.serialNumber, 16);
	counters[ncounters].user = counters[ncounters].so = max_tries;
	return &counters[ncounters++];
}

static struct counter *counter_for_session(CK_SESSION_HANDLE h)
{
	CK_SESSION_INFO si;
	if (target->C_GetSessionInfo(h, &si) != CKR_OK)
		return NULL;
	return counter_for_slot(si.slotID);
}

/* pad_path is the keypad file, or NULL when the tokens have no PIN pad. */
static const char *pad_path(void)
{
	const char *p = getenv("PINLIMIT_PAD");
	return p != NULL && *p != 0 ? p : NULL;
}

/* read_pad waits for the keypad: the PIN written to the pad file, up to a
 * newline, into buf (NUL-terminated). */
static CK_RV read_pad(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r"); /* a FIFO blocks here until the test writes */
	size_t n;
	if (f == NULL)
		return CKR_DEVICE_ERROR;
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = 0;
	buf[strcspn(buf, "\r\n")] = 0;
	if (strcmp(buf, "CANCEL") == 0)
		return CKR_FUNCTION_CANCELED;
	return CKR_OK;
}

static CK_RV pl_Login(CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	struct counter *c;
	int *left;
	CK_RV rv;
	char pad[256];
	if (user != CKU_USER && user != CKU_SO)
		return target->C_Login(h, user, pin, len);
	if (pin == NULL && pad_path() != NULL) {
		/* Outside the lock: the person at the reader may take a while. */
		if ((rv = read_pad(pad_path(), pad, sizeof pad)) != CKR_OK)
			return rv;
		pin = (CK_UTF8CHAR_PTR)pad;
		len = strlen(pad);
	}
	pthread_mutex_lock(&mu);
	c = counter_for_session(h);
	if (c == NULL) {
		pthread_mutex_unlock(&mu);
		return CKR_GENERAL_ERROR;
	}
	left = user == CKU_SO ? &c->so : &c->user;
	if (*left == 0) {
		pthread_mutex_unlock(&mu);
		return CKR_PIN_LOCKED;
	}
	rv = target->C_Login(h, user, pin, len);
	if (rv == CKR_PIN_INCORRECT)
		(*left)--;
	else if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
		*left = max_tries;
	pthread_mutex_unlock(&mu);
	memset(pad, 0, sizeof pad);
	return rv;
}

static CK_RV pl_InitPIN(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	struct counter *c;
	CK_RV rv = target->C_InitPIN(h, pin, len);
	if (rv == CKR_OK) {
		pthread_mutex_lock(&mu);
		if ((c = counter_for_session(h)) != NULL)
			c->user = max_tries;
		pthread_mutex_unlock(&mu);
	}
	return rv;
}

static CK_RV pl_SetPIN(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR old, CK_ULONG oldLen, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	CK_SESSION_INFO si;
	const char *refuse = getenv("PINLIMIT_REFUSE_SO_SETPIN");
	if (refuse != NULL && *refuse != 0 && target->C_GetSessionInfo(h, &si) == CKR_OK && si.state == CKS_RW_SO_FUNCTIONS)
		return CKR_FUNCTION_NOT_SUPPORTED;
	return target->C_SetPIN(h, old, oldLen, pin, len);
}

static CK_RV pl_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR ti)
{
	struct counter *c;
	CK_RV rv = target->C_GetTokenInfo(slot, ti);
	if (rv == CKR_OK && pad_path() != NULL)
		ti->flags |= CKF_PROTECTED_AUTHENTICATION_PATH;
	if (rv != CKR_OK || !(ti->flags & CKF_TOKEN_INITIALIZED))
		return rv;
	pthread_mutex_lock(&mu);
	c = counter_for_slot(slot);
	ti->flags &= ~(CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED |
		       CKF_SO_PIN_COUNT_LOW | CKF_SO_PIN_FINAL_TRY | CKF_SO_PIN_LOCKED);
	if (c != NULL) {
		if (c->user < max_tries) ti->flags |= CKF_USER_PIN_COUNT_LOW;
		if (c->user == 1) ti->flags |= CKF_USER_PIN_FINAL_TRY;
		if (c->user == 0) ti->flags |= CKF_USER_PIN_LOCKED;
		if (c->so < max_tries) ti->flags |= CKF_SO_PIN_COUNT_LOW;
		if (c->so == 1) ti->flags |= CKF_SO_PIN_FINAL_TRY;
		if (c->so == 0) ti->flags |= CKF_SO_PIN_LOCKED;
	}
	pthread_mutex_unlock(&mu);
	return rv;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
	if (target == NULL) {
		const char *path = getenv("PINLIMIT_TARGET");
		const char *tries = getenv("PINLIMIT_TRIES");
		void *lib;
		CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
		CK_RV rv;
		if (path == NULL || (lib = dlopen(path, RTLD_NOW)) == NULL)
			return CKR_GENERAL_ERROR;
		get = (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(lib, "C_GetFunctionList");
		if (get == NULL || (rv = get(&target)) != CKR_OK)
			return CKR_GENERAL_ERROR;
		if (tries != NULL && atoi(tries) > 0)
			max_tries = atoi(tries);
		list = *target;
		list.C_GetFunctionList = C_GetFunctionList;
		list.C_Login = pl_Login;
		list.C_InitPIN = pl_InitPIN;
		list.C_GetTokenInfo = pl_GetTokenInfo;
		list.C_SetPIN = pl_SetPIN;
	}
	*out = &list;
	return CKR_OK;
}
