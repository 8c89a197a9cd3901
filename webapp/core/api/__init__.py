"""The REST API under ``/api/``: reads of everything the dashboard shows and the writes an
operator or admin makes (kill switch, modes, risk limits, configuration), each through the
services the ``arbbot`` command line uses, so both validate alike and name the bad field.

Every endpoint needs a login (a session, or ``Authorization: Token <key>``) and the role
``webapp.core.roles`` names; lists are cursor-paginated with a hard page-size limit;
uint256 amounts are decimal strings. The OpenAPI 3 schema is served at ``/api/schema/``
(Swagger UI at ``/api/docs/``) and committed as ``docs/openapi.yaml``.
"""
