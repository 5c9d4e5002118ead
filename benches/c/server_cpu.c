/* Server CPU of one statement in a fresh session (issue 19 point 8), read
 * from the backend's own accounting: /proc/<pid>/schedstat (time on CPU, in
 * ns) before and after the statement — robust to the machine's load, since
 * it counts the backend's CPU time, not the wall. Runs on the database's
 * host (it reads the backend's /proc entry).
 *
 * Each round opens one fresh session per (CONNINFO, SQL) pair in turn
 * (A B A B …), runs `SELECT 1` first (so the session's own first-statement
 * costs are left out for every pair alike), then the SQL with the extended
 * protocol (PQexecParams: Parse/Bind/Execute, as sqlx sends it), and
 * records the backend's CPU for it. Prints each pair's median, quartiles
 * and range in ms.
 *
 *   cc -O2 -o server_cpu server_cpu.c -I"$(pg_config --includedir)" -lpq
 *   ./server_cpu 41 "host=127.0.0.1 dbname=before sslmode=require options=-csearch_path=keyfall" "$SQL" \
 *                   "host=127.0.0.1 dbname=after sslmode=require options=-csearch_path=keyfall" "$SQL"
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <libpq-fe.h>

static long long cpu_ns(int pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/schedstat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long long ns = -1;
    if (fscanf(f, "%lld", &ns) != 1) ns = -1;
    fclose(f);
    return ns;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 4 || (argc - 2) % 2 != 0) {
        fprintf(stderr, "usage: server_cpu ROUNDS CONNINFO SQL [CONNINFO SQL]...\n");
        return 2;
    }
    int rounds = atoi(argv[1]), pairs = (argc - 2) / 2;
    if (rounds < 1) return 2;
    double *ms = calloc((size_t)rounds * pairs, sizeof(double));
    if (!ms) return 1;
    for (int r = 0; r < rounds; r++) {
        for (int p = 0; p < pairs; p++) {
            PGconn *conn = PQconnectdb(argv[2 + 2 * p]);
            if (PQstatus(conn) != CONNECTION_OK) {
                fprintf(stderr, "connect: %s", PQerrorMessage(conn));
                return 3;
            }
            int pid = PQbackendPID(conn);
            PQclear(PQexec(conn, "SELECT 1"));
            usleep(2000); /* the backend is asleep, its accounting settled */
            long long before = cpu_ns(pid);
            PGresult *res = PQexecParams(conn, argv[3 + 2 * p], 0, NULL, NULL, NULL, NULL, 0);
            if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
                fprintf(stderr, "pair %d: %s", p + 1, PQerrorMessage(conn));
                return 4;
            }
            PQclear(res);
            usleep(2000);
            long long after = cpu_ns(pid);
            if (before < 0 || after < 0) {
                fprintf(stderr, "cannot read /proc/%d/schedstat (run this on the database's host)\n", pid);
                return 5;
            }
            ms[p * rounds + r] = (after - before) / 1e6;
            PQfinish(conn);
            usleep(3000);
        }
    }
    for (int p = 0; p < pairs; p++) {
        double *v = ms + p * rounds;
        qsort(v, rounds, sizeof(double), by_value);
        printf("%d: median %6.2f ms  (p25 %5.2f, p75 %5.2f, min %5.2f, max %6.2f), %d sessions\n", p + 1, v[rounds / 2],
               v[rounds / 4], v[3 * rounds / 4], v[0], v[rounds - 1], rounds);
    }
    free(ms);
    return 0;
}
