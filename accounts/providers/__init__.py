"""allauth's X providers, pointed at wherever X lives.

allauth's `twitter` (OAuth 1.0a) and `twitter_oauth2` (OAuth 2.0 with PKCE)
providers hard-code api.x.com and x.com. These subclasses keep allauth's
provider ids, URLs and flows but build every X URL from settings.X_API_BASE_URL
and settings.X_WEB_BASE_URL when a request needs it, so pointing those two
settings at the sandbox (or any server speaking X's wire format) is the only
change needed. Each is a small app installed in place of allauth's.
"""
