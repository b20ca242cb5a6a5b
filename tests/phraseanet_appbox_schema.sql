-- A copy of the Phraseanet appbox schema the import is written against, so the tests and the
-- benchmark need nothing outside the repository. Provenance: the project's shared reference
-- phraseanet-appbox-schema.sql (from alchemy-fr/Phraseanet adc492f842e8, 4.1.22), unchanged
-- below this header.
--
-- Phraseanet 4.1.x "appbox": the tables an import into authserver reads.
--
-- Source: alchemy-fr/Phraseanet master adc492f842e8 (Version.php 4.1.22), Doctrine ORM 2.5.6 /
-- DBAL 2.5.10 (composer.lock). In 4.1 the schema of these tables is whatever Doctrine's
-- SchemaTool makes of the entities in lib/Alchemy/Phrasea/Model/Entities/: a fresh install runs
-- SchemaTool::createSchema (lib/Alchemy/Phrasea/Setup/Installer.php:168-171), and every upgrade
-- runs the Doctrine migrations and then SchemaTool::updateSchema($metas, true)
-- (lib/classes/appbox.php:236-240), which adds, alters and drops columns until the tables match
-- the entities. The hand-written migrations (lib/Alchemy/Phrasea/Setup/DoctrineMigrations/
-- UserMigration.php, ApiMigration.php, Version20151209101524.php) are only the older part of
-- that history: e.g. Users.granted_api / nb_inactivity_email / last_inactivity_email /
-- can_renew_password and ApiApplications.listened_events / hmac_key / webhook_active exist in
-- no migration, only in the entities.
--
-- Written as `SHOW CREATE TABLE` would print it on MariaDB/MySQL. Types follow DBAL 2.5's MySQL
-- platform: integer INT, smallint SMALLINT, boolean TINYINT(1), datetime DATETIME,
-- text LONGTEXT, json_array LONGTEXT + COMMENT '(DC2Type:json_array)', and Phraseanet's own
-- binary_string type = VARCHAR(n) COLLATE utf8_bin + COMMENT '(DC2Type:binary_string)'
-- (lib/Alchemy/Phrasea/Model/Types/BinaryString.php). Table defaults: InnoDB, utf8 /
-- utf8_unicode_ci (DBAL's MySQL default, and what the migrations spell out).
--
-- Column ORDER is the fresh-install order (entity fields in declaration order, then the
-- many-to-one join columns). An instance upgraded from 3.x/4.0 has the same columns, types and
-- keys, but in migration order with the newer columns appended: read dumps by column name.
-- Index names are the entity names (updateSchema renames the migration-era IDX_... names).
-- FK names are DBAL's "FK_" + dechex(crc32(table)) + dechex(crc32(column)), identical to the
-- names in ApiMigration.php / UserMigration.php.
--
-- Collation consequences an importer must keep in mind:
--   * Users.login / password / nonce are utf8_bin: the login UNIQUE key is case-SENSITIVE, so
--     "Alice" and "alice" can both exist (authserver's unique index is on lower(login)).
--   * Users.email and every Api* string column are utf8_unicode_ci: the UNIQUE keys on email and
--     client_id, and the primary-key lookups of oauth_token / code, are case-INSENSITIVE (and
--     ignore trailing spaces). Phraseanet therefore accepts a token typed in another case.
--
-- Runnable on MariaDB 10.11 (Debian 12 mariadb-server); `utf8` means utf8mb3 there.

SET NAMES utf8;  -- Phraseanet connects with charset UTF8 (main.database.charset)
SET FOREIGN_KEY_CHECKS = 0;

DROP TABLE IF EXISTS `ApiLogs`;
DROP TABLE IF EXISTS `ApiOauthRefreshTokens`;
DROP TABLE IF EXISTS `ApiOauthCodes`;
DROP TABLE IF EXISTS `ApiOauthTokens`;
DROP TABLE IF EXISTS `ApiAccounts`;
DROP TABLE IF EXISTS `ApiApplications`;
DROP TABLE IF EXISTS `Users`;

-- lib/Alchemy/Phrasea/Model/Entities/User.php (@ORM\Table lines 21-34, columns lines 46-282).
-- The columns an import reads are marked "<--"; the others are kept so that a real dump's
-- INSERTs (which list every column) load.
CREATE TABLE `Users` (
  `id` INT NOT NULL AUTO_INCREMENT,                                         -- <-- user id (ApiAccounts.user_id, ApiApplications.creator_id)
  `login` VARCHAR(128) COLLATE utf8_bin NOT NULL COMMENT '(DC2Type:binary_string)',   -- <-- sign-in name, matched with LOWER() = LOWER(?)
  `email` VARCHAR(128) DEFAULT NULL,                                        -- <-- NULL = cannot sign in (findRealUserByLogin)
  `password` VARCHAR(128) COLLATE utf8_bin DEFAULT NULL COMMENT '(DC2Type:binary_string)', -- <-- 128 hex (salted) or 64 hex (old sha256); NULL for templates
  `nonce` VARCHAR(64) COLLATE utf8_bin DEFAULT NULL COMMENT '(DC2Type:binary_string)',    -- <-- per-user salt, appended to the password
  `salted_password` TINYINT(1) NOT NULL DEFAULT '1',                        -- <-- 1 = HMAC-SHA512 scheme, 0 = old sha256 scheme
  `first_name` VARCHAR(64) NOT NULL DEFAULT '',                             -- <-- display name
  `last_name` VARCHAR(64) NOT NULL DEFAULT '',                              -- <-- display name
  `gender` SMALLINT DEFAULT NULL,
  `address` VARCHAR(255) NOT NULL DEFAULT '',
  `city` VARCHAR(64) NOT NULL DEFAULT '',
  `country` VARCHAR(64) DEFAULT '',
  `zip_code` VARCHAR(32) NOT NULL DEFAULT '',
  `geoname_id` INT DEFAULT NULL,
  `locale` VARCHAR(8) DEFAULT NULL,
  `timezone` VARCHAR(128) NOT NULL DEFAULT '',
  `job` VARCHAR(128) NOT NULL DEFAULT '',
  `activity` VARCHAR(256) NOT NULL DEFAULT '',
  `company` VARCHAR(64) NOT NULL DEFAULT '',
  `phone` VARCHAR(32) NOT NULL DEFAULT '',
  `fax` VARCHAR(32) NOT NULL DEFAULT '',
  `admin` TINYINT(1) NOT NULL DEFAULT '0',
  `guest` TINYINT(1) NOT NULL DEFAULT '0',                                  -- <-- guest accounts cannot sign in
  `mail_notifications` TINYINT(1) NOT NULL DEFAULT '0',
  `request_notifications` TINYINT(1) NOT NULL DEFAULT '0',
  `ldap_created` TINYINT(1) NOT NULL DEFAULT '0',
  `push_list` VARCHAR(255) NOT NULL DEFAULT '',
  `can_change_profil` TINYINT(1) NOT NULL DEFAULT '1',
  `can_change_ftp_profil` TINYINT(1) NOT NULL DEFAULT '1',
  `last_connection` DATETIME DEFAULT NULL,
  `mail_locked` TINYINT(1) NOT NULL DEFAULT '0',                            -- <-- e-mail not confirmed: sign-in refused
  `deleted` TINYINT(1) NOT NULL DEFAULT '0',                                -- <-- soft-deleted (login renamed "(#deleted_<login>_<id>)", email NULL)
  `created` DATETIME NOT NULL,                                              -- <-- Gedmo Timestampable(on="create")
  `updated` DATETIME NOT NULL,
  `granted_api` TINYINT(1) NOT NULL DEFAULT '0',
  `nb_inactivity_email` INT NOT NULL DEFAULT '0',
  `last_inactivity_email` DATETIME DEFAULT NULL,
  `can_renew_password` TINYINT(1) NOT NULL DEFAULT '1',                     -- false when an exclusive OpenID provider owns the password
  `last_model` INT DEFAULT NULL,
  `model_of` INT DEFAULT NULL,                                              -- <-- NOT NULL = a template ("model") user, owner's id; cannot sign in
  PRIMARY KEY (`id`),
  UNIQUE KEY `email_unique` (`email`),
  UNIQUE KEY `login_unique` (`login`),
  KEY `user_model_of` (`model_of`),
  KEY `user_salted_password` (`salted_password`),
  KEY `user_admin` (`admin`),
  KEY `user_guest` (`guest`),
  KEY `IDX_D5428AEDB5DE44C2` (`last_model`),
  CONSTRAINT `FK_D5428AEDB5DE44C2` FOREIGN KEY (`last_model`) REFERENCES `Users` (`id`),
  CONSTRAINT `FK_D5428AEDC121714D` FOREIGN KEY (`model_of`) REFERENCES `Users` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COLLATE=utf8_unicode_ci;

-- lib/Alchemy/Phrasea/Model/Entities/ApiApplication.php (table lines 10-13, columns 25-154).
CREATE TABLE `ApiApplications` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `type` VARCHAR(128) NOT NULL,                       -- 'web' | 'desktop'
  `name` VARCHAR(128) NOT NULL,
  `description` LONGTEXT NOT NULL,
  `website` VARCHAR(128) NOT NULL,                    -- any FILTER_VALIDATE_URL with scheme+host (not only http/https)
  `created` DATETIME NOT NULL,
  `updated` DATETIME NOT NULL,
  `client_id` VARCHAR(128) NOT NULL,                  -- 32 x [0-9a-zA-Z]; legacy built-ins '\alchemy\phraseanet\id\...'
  `client_secret` VARCHAR(128) NOT NULL,              -- PLAINTEXT, compared with === (lib/classes/API/OAuth2/Adapter.php:151)
  `nonce` VARCHAR(64) NOT NULL,                       -- unused by the OAuth flow
  `redirect_uri` VARCHAR(128) NOT NULL,               -- ONE uri, matched as a case-insensitive PREFIX; desktop: urn:ietf:wg:oauth:2.0:oob
  `activated` TINYINT(1) NOT NULL,                    -- never read (only ApiApplication::isActivated() exists)
  `grant_password` TINYINT(1) NOT NULL,               -- enables grant_type=password for this client
  `webhook_url` VARCHAR(1024) DEFAULT NULL,
  `listened_events` LONGTEXT DEFAULT NULL COMMENT '(DC2Type:json_array)',
  `hmac_key` VARCHAR(1024) DEFAULT NULL,
  `webhook_active` TINYINT(1) NOT NULL,
  `creator_id` INT DEFAULT NULL,                      -- NULL = built-in app (navigator / office / adobe_cc plugins)
  PRIMARY KEY (`id`),
  UNIQUE KEY `client_id` (`client_id`),
  KEY `api_application_creator_id` (`creator_id`),
  CONSTRAINT `FK_53F7BBE661220EA6` FOREIGN KEY (`creator_id`) REFERENCES `Users` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COLLATE=utf8_unicode_ci;

-- lib/Alchemy/Phrasea/Model/Entities/ApiAccount.php (table lines 10-13, columns 18-64).
-- No UNIQUE(user_id, application_id): duplicates are possible (found with findByUserAndApplication).
CREATE TABLE `ApiAccounts` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `revoked` TINYINT(1) NOT NULL DEFAULT '0',          -- 1 = every token of the account is refused (401)
  `api_version` VARCHAR(16) NOT NULL,                 -- '2.0.0' (4.x, V2::VERSION) or '1.0' (3.x API_OAuth2_Adapter::API_VERSION)
  `created` DATETIME NOT NULL,
  `user_id` INT NOT NULL,
  `application_id` INT NOT NULL,
  PRIMARY KEY (`id`),
  KEY `api_account_user_id` (`user_id`),
  KEY `api_account_application_id` (`application_id`),
  CONSTRAINT `FK_2C54E637A76ED395` FOREIGN KEY (`user_id`) REFERENCES `Users` (`id`),
  CONSTRAINT `FK_2C54E6373E030ACD` FOREIGN KEY (`application_id`) REFERENCES `ApiApplications` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COLLATE=utf8_unicode_ci;

-- lib/Alchemy/Phrasea/Model/Entities/ApiOauthToken.php (table lines 9-12, columns 19-66).
CREATE TABLE `ApiOauthTokens` (
  `oauth_token` VARCHAR(128) NOT NULL,                -- the bearer value in clear; flow: 32 lowercase hex (md5), developer: 32 x [0-9a-zA-Z]
  `session_id` INT DEFAULT NULL,                      -- Phraseanet Sessions.id of the last API call (no FK)
  `expires` INT DEFAULT NULL,                         -- Unix time; NULL = developer token (and every token migrated from 3.x, patch 390alpha17a)
  `last_used` DATETIME NOT NULL,
  `scope` VARCHAR(128) DEFAULT NULL,                  -- always NULL in practice
  `created` DATETIME NOT NULL,
  `updated` DATETIME NOT NULL,
  `account_id` INT NOT NULL,
  PRIMARY KEY (`oauth_token`),
  KEY `api_oauth_token_account_id` (`account_id`),
  KEY `api_oauth_token_session_id` (`session_id`),
  CONSTRAINT `FK_4FD469539B6B5FBA` FOREIGN KEY (`account_id`) REFERENCES `ApiAccounts` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COLLATE=utf8_unicode_ci;

-- lib/Alchemy/Phrasea/Model/Entities/ApiOauthCode.php (table line 9, columns 16-59).
CREATE TABLE `ApiOauthCodes` (
  `code` VARCHAR(128) NOT NULL,                       -- 32 lowercase hex; lives 30 s, never deleted after use
  `redirect_uri` VARCHAR(128) NOT NULL,
  `expires` INT NOT NULL,                             -- Unix time
  `scope` VARCHAR(128) DEFAULT NULL,
  `created` DATETIME NOT NULL,
  `updated` DATETIME NOT NULL,
  `account_id` INT NOT NULL,
  PRIMARY KEY (`code`),
  KEY `api_oauth_code_account_id` (`account_id`),
  CONSTRAINT `FK_BE6B11809B6B5FBA` FOREIGN KEY (`account_id`) REFERENCES `ApiAccounts` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COLLATE=utf8_unicode_ci;

-- lib/Alchemy/Phrasea/Model/Entities/ApiOauthRefreshToken.php (table line 9, columns 16-52).
-- Never written by 4.1 (no refresh_token grant is offered); normally empty.
CREATE TABLE `ApiOauthRefreshTokens` (
  `refresh_token` VARCHAR(128) NOT NULL,
  `expires` INT NOT NULL,
  `scope` VARCHAR(128) DEFAULT NULL,
  `created` DATETIME NOT NULL,
  `updated` DATETIME NOT NULL,
  `account_id` INT NOT NULL,
  PRIMARY KEY (`refresh_token`),
  KEY `api_oauth_refresh_token_account_id` (`account_id`),
  CONSTRAINT `FK_7DA42A5A9B6B5FBA` FOREIGN KEY (`account_id`) REFERENCES `ApiAccounts` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COLLATE=utf8_unicode_ci;

-- lib/Alchemy/Phrasea/Model/Entities/ApiLog.php; ON DELETE CASCADE from
-- DoctrineMigrations/Version20151209101524.php and the entity's onDelete="CASCADE". Audit only.
CREATE TABLE `ApiLogs` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `route` VARCHAR(128) DEFAULT NULL,
  `method` VARCHAR(16) DEFAULT NULL,
  `created` DATETIME NOT NULL,
  `status_code` INT DEFAULT NULL,
  `format` VARCHAR(64) DEFAULT NULL,
  `resource` VARCHAR(64) DEFAULT NULL,
  `general` VARCHAR(64) DEFAULT NULL,
  `aspect` VARCHAR(64) DEFAULT NULL,
  `action` VARCHAR(64) DEFAULT NULL,
  `error_code` INT DEFAULT NULL,
  `error_message` LONGTEXT DEFAULT NULL,
  `account_id` INT NOT NULL,
  PRIMARY KEY (`id`),
  KEY `api_log_account_id` (`account_id`),
  CONSTRAINT `FK_91E90F309B6B5FBA` FOREIGN KEY (`account_id`) REFERENCES `ApiAccounts` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COLLATE=utf8_unicode_ci;

SET FOREIGN_KEY_CHECKS = 1;
