#!/usr/bin/env bash
# Server time of the placement guard on MySQL / MariaDB: inserts into a shared table without it
# and with the guard's two triggers (a copy of `guard_sql` in tenancy-core/src/mysql/tier.rs:
# each row whose tenant is not the container's reads the tenant's registry row by its key with a
# shared lock). Prints the server's own time, measured in the session (NOW(6) before and
# after): 5,000 single-row INSERT statements of 1,000 tenants in one procedure call, and one
# INSERT … SELECT of 50,000 rows of one tenant, each in a transaction rolled back; 3 rounds.
# Usage: MYSQL_URL=mysql://root@127.0.0.1:3306/test bash benches/ab/guard_cost_mysql.sh
set -euo pipefail
url=${MYSQL_URL:-mysql://root@127.0.0.1:3306/test}
rest=${url#mysql://}
auth=${rest%%@*}
hostport=${rest#*@}
hostport=${hostport%%/*}
user=${auth%%:*}
pass=
[[ $auth == *:* ]] && pass=${auth#*:}
host=${hostport%%:*}
port=3306
[[ $hostport == *:* ]] && port=${hostport#*:}
q() { MYSQL_PWD=$pass mariadb -N -B -u "$user" -h "$host" -P "$port" "$@"; }
q <<'SQL'
DROP DATABASE IF EXISTS guard_cost;
CREATE DATABASE guard_cost CHARACTER SET utf8mb4;
USE guard_cost;
CREATE TABLE guard_cost.row_tenants (
  name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  container VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  dropping BOOLEAN NOT NULL DEFAULT FALSE
) ENGINE = InnoDB;
INSERT INTO guard_cost.row_tenants (name, container)
  SELECT CONCAT('t', seq), 'guard_cost' FROM seq_1_to_1000;
CREATE TABLE guard_cost.guards (id BIGINT AUTO_INCREMENT PRIMARY KEY,
  tenant_id VARCHAR(63) NOT NULL, name VARCHAR(50) NOT NULL, position VARCHAR(50) NOT NULL,
  age INT) ENGINE = InnoDB;
DELIMITER //
CREATE PROCEDURE guard_cost.singles()
BEGIN
  DECLARE i INT DEFAULT 0;
  WHILE i < 5000 DO
    INSERT INTO guard_cost.guards (tenant_id, name, position, age)
      VALUES (CONCAT('t', 1 + i % 1000), 'Abu', 'Guard', 30);
    SET i = i + 1;
  END WHILE;
END//
DELIMITER ;
SQL
guard() {
    local event=$1 changed=$2
    printf 'DELIMITER //\n%s//\n' "CREATE TRIGGER guard_cost.tenancy_$event BEFORE $event ON guard_cost.guards FOR EACH ROW BEGIN
      DECLARE placed VARCHAR(255) DEFAULT NULL;
      IF $changed NOT (NEW.tenant_id <=> 'guard_cost') THEN
        SELECT IF(dropping, NULL, container) INTO placed FROM guard_cost.row_tenants FORCE INDEX (PRIMARY) WHERE name = CONVERT(NEW.tenant_id USING ascii) COLLATE ascii_bin LOCK IN SHARE MODE;
        IF NOT (placed <=> 'guard_cost') THEN
          SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'not placed';
        END IF;
      END IF;
    END" | q
}
timed() {
    q -D guard_cost -e "SET @t = NOW(6); START TRANSACTION; $1; ROLLBACK;
          SELECT ROUND(TIMESTAMPDIFF(MICROSECOND, @t, NOW(6)) / 1000, 1)"
}
bulk="INSERT INTO guard_cost.guards (tenant_id, name, position, age) SELECT 't7', 'Abu', 'Guard', 30 FROM seq_1_to_50000"
for round in 1 2 3; do
    for kind in none guard; do
        q -e "DROP TRIGGER IF EXISTS guard_cost.tenancy_INSERT; DROP TRIGGER IF EXISTS guard_cost.tenancy_UPDATE"
        if [[ $kind == guard ]]; then
            guard INSERT ""
            guard UPDATE "NOT (NEW.tenant_id <=> OLD.tenant_id) AND"
        fi
        s=$(timed "CALL guard_cost.singles()")
        b=$(timed "$bulk")
        echo "round $round, $kind: 5,000 single-row inserts: $s ms; 50,000 rows in one insert: $b ms"
    done
done
q -e "DROP DATABASE guard_cost"
