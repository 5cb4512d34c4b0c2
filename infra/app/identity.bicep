// The user-assigned managed identity the function app runs as.
//
// User-assigned rather than system-assigned so that its roles can be granted before
// the app exists (the host reaches storage and Key Vault on its first start) and so
// that it survives re-creating the app.

@description('Name of the identity.')
param name string

param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output name string = identity.name
output id string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
