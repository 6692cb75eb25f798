import { DomainError } from './errors.js'

// What a new password must not be, beyond its length (the schemas: 8 to 200 characters). Following NIST SP 800-63B
// §5.1.1.2: no composition rules, but a password is refused when it is only spaces, the login's own name, one
// character repeated, or among the most common passwords (a short list: a guess every throttled login tries first).
const COMMON = new Set([
  'password', 'password1', 'password12', 'password123', '12345678', '123456789', '1234567890', '87654321',
  'qwertyui', 'qwertyuiop', 'iloveyou', 'sunshine', 'princess', 'football', 'baseball', 'welcome1', 'abc12345',
  'letmein1', 'trustno1', 'passw0rd', 'admin123', 'changeme', 'superman', '11111111', '00000000',
])

/** Throws 422 VALIDATION_FAILED (pointer /password) for a password the rules above refuse. */
export function checkNewPassword (username: string, password: string): void {
  const why = password.trim() === ''
    ? 'is only spaces'
    : password.trim().toLowerCase() === username.trim().toLowerCase()
      ? 'is the username'
      : /^(.)\1*$/su.test(password)
        ? 'is one character repeated'
        : COMMON.has(password.toLowerCase())
          ? 'is one of the most common passwords'
          : null
  if (why != null) throw new DomainError('VALIDATION_FAILED', `the password ${why}: choose another`, [{ pointer: '/password', detail: why }])
}
