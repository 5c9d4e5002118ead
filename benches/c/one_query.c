/* The yardstick of `cargo bench --bench process` (DESIGN §10, issue 19
 * point 8): a C libpq client that connects (the conninfo in argv[1], TLS
 * as the server offers it) and runs one indexed query — a user by email,
 * as `keyfall resolve` starts with — then prints the row and exits. A
 * whole `keyfall resolve` process is compared with this one, side by side.
 * Built by the bench with the system's cc and libpq (`cc one_query.c -lpq`). */
#include <stdio.h>
#include <stdlib.h>
#include <libpq-fe.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: one_query CONNINFO EMAIL\n");
        return 2;
    }
    PGconn *conn = PQconnectdb(argv[1]);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return 3;
    }
    const char *params[1] = {argv[2]};
    PGresult *res = PQexecParams(conn, "SELECT id, email, account_id FROM keyfall.users WHERE email = $1", 1, NULL,
                                 params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "query: %s", PQerrorMessage(conn));
        PQclear(res);
        PQfinish(conn);
        return 4;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        printf("%s %s %s\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
    }
    PQclear(res);
    PQfinish(conn);
    return 0;
}
