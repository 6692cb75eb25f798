// The host of a link this service makes (a payment request's payUrl and QR text): a DNS name (underscores allowed,
// as container and compose service names have them) or a bracketed IP literal, and an optional port. Used for a
// Host header when PUBLIC_URL is unset (routes/payment-requests.routes.ts) and for PUBLIC_URL itself (config.ts):
// anything else (a user and password, markup, spaces) could end up in every link and QR code.
export const HOST = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$/

/** The longest host (with its port) put into a link. */
export const HOST_MAX_LENGTH = 260

export const isLinkHost = (host: string): boolean => host.length <= HOST_MAX_LENGTH && HOST.test(host)
